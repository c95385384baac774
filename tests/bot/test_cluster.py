"""Drill: Kefu on a real Redis Cluster (three masters on loopback, ``redis+cluster://``).

Web-chat customers talk to the bot, one is handed off, an agent claims, answers and resolves,
an admin edits the knowledge base — through the whole app, pub/sub and locks included.  The
data spreads over the masters, every key's slot is the one ``CLUSTER KEYSLOT`` gives, and no
call was refused ``CROSSSLOT`` (it would have failed the request).
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from redis.cluster import ClusterNode, RedisCluster
from starlette.testclient import TestClient

from bot import keys
from bot.agents.auth import hash_password
from bot.app import create_app
from bot.config import AgentsConfig, AgentUserConfig, Config, IntentsConfig, KnowledgeConfig, StoreConfig
from bot.errors import ConfigError
from bot.storage.client import connect
from tests.bot.test_keys import slot
from tests.browser import free_port

PASSWORD = "cluster-密码"
MASTERS = 3


def _port() -> int:
    """A free port whose cluster bus port (+10000) is a port too."""
    while (port := free_port()) > 55_000:
        pass
    return port


def _command(port: int, *args: str) -> Any:
    return redis.Redis(port=port, decode_responses=True).execute_command(*args)  # type: ignore[no-untyped-call, unused-ignore]


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[list[int]]:
    """Three redis-server masters joined by ``redis-cli --cluster create``; their ports."""
    server, cli = shutil.which("redis-server"), shutil.which("redis-cli")
    if server is None or cli is None:
        pytest.skip("redis-server and redis-cli are needed for the cluster drill")
    ports = [_port() for _ in range(MASTERS)]
    procs = [subprocess.Popen([server, "--port", str(port), "--bind", "127.0.0.1", "--cluster-enabled", "yes",
                               "--cluster-config-file", f"nodes-{port}.conf", "--save", "", "--appendonly", "no",
                               "--dir", str(tmp_path)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
             for port in ports]
    try:
        for port in ports:
            deadline = time.monotonic() + 10
            while True:
                try:
                    redis.Redis(port=port, socket_connect_timeout=0.5).ping()
                    break
                except redis.exceptions.ConnectionError:
                    assert time.monotonic() < deadline, "redis-server did not start"
                    time.sleep(0.05)
        created = subprocess.run([cli, "--cluster", "create", *(f"127.0.0.1:{p}" for p in ports),
                                  "--cluster-replicas", "0", "--cluster-yes"], capture_output=True, text=True,
                                 timeout=60)
        assert created.returncode == 0, created.stdout + created.stderr
        deadline = time.monotonic() + 20
        while not all(_command(p, "CLUSTER INFO")["cluster_state"] == "ok" for p in ports):
            assert time.monotonic() < deadline, "the cluster did not come up"
            time.sleep(0.1)
        yield ports
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=10)


def test_a_day_of_customer_service_on_a_redis_cluster(cluster: list[int], cache_dir: Path) -> None:
    hashed = hash_password(PASSWORD)
    users = (AgentUserConfig("li", hashed, "agent"), AgentUserConfig("boss", hashed, "admin"))
    url = "redis+cluster://" + ",".join(f"127.0.0.1:{port}" for port in cluster[:2])  # seeds: any nodes
    config = Config(store=StoreConfig(url=url), knowledge=KnowledgeConfig(cache_dir=str(cache_dir)),
                    intents=IntentsConfig(embeddings=False), agents=dataclasses.replace(AgentsConfig(), users=users))
    sessions = [f"cluster-customer-{n}" for n in range(8)]
    with TestClient(create_app(config)) as client:
        for session in sessions:
            first = client.post("/api/chat", json={"session": session, "text": "怎么退货", "message_id": f"{session}-1"})
            assert first.status_code == 200 and first.json()["replies"], first.text
            again = client.post("/api/chat", json={"session": session, "text": "怎么退货", "message_id": f"{session}-1"})
            assert again.json()["duplicate"] is True and again.json()["replies"] == first.json()["replies"]
            assert client.post("/api/chat", json={"session": session, "text": "退款多久到账"}).status_code == 200
        token = client.post("/api/chat/visitor", json={}).json()["token"]  # a new chat, admitted and counted
        handoff = client.post("/api/chat", json={"token": token, "text": "转人工"})
        assert handoff.json()["state"] == "waiting", handoff.text
        login = client.post("/api/agent/login", json={"name": "li", "password": PASSWORD})
        assert login.status_code == 200, login.text
        li = {"X-CSRF-Token": login.json()["csrf"]}
        ticket = client.get("/api/agent/tickets").json()["queued"][0]["id"]
        assert client.post(f"/api/agent/tickets/{ticket}/claim", headers=li).json()["ticket"]["owner"] == "li"
        said = client.post(f"/api/agent/tickets/{ticket}/messages", json={"text": "您好，我是小李"}, headers=li)
        assert said.status_code == 200, said.text
        seen = client.get("/api/chat/messages", params={"after": 0}, headers={"X-Kefu-Visitor": token})
        assert "您好，我是小李" in [m["text"] for m in seen.json()["messages"]], seen.text
        assert client.post(f"/api/agent/tickets/{ticket}/resolve", headers=li).json()["ticket"]["status"] == "resolved"
        boss = client.post("/api/agent/login", json={"name": "boss", "password": PASSWORD}).json()["csrf"]
        before = client.get("/healthz").json()["knowledge_version"]
        entry = client.get("/api/admin/entries/return-policy").json()
        entry = entry.get("entry", entry)
        entry["questions"] = [*entry["questions"], "东西不想要了怎么办"]
        edited = client.put("/api/admin/entries/return-policy", json=entry, headers={"X-CSRF-Token": boss})
        assert edited.status_code == 200, edited.text
        deadline = time.monotonic() + 10  # the change is announced over pub/sub and reloaded
        while client.get("/healthz").json()["knowledge_version"] != before + 1:
            assert time.monotonic() < deadline, "the knowledge change never reached the worker"
            time.sleep(0.1)
        asked = client.post("/api/chat", json={"session": sessions[0], "text": "东西不想要了怎么办"}).json()
        assert asked["decision"]["entry_id"] == "return-policy", asked

    seed = ClusterNode("127.0.0.1", cluster[0])  # type: ignore[no-untyped-call, unused-ignore]
    view = RedisCluster(startup_nodes=[seed], decode_responses=True)
    try:
        per_node: dict[int, list[str]] = {}
        for port in cluster:
            node = redis.Redis(port=port, decode_responses=True)
            per_node[port] = [str(k) for k in node.scan_iter(match=f"{keys.PREFIX}*", count=500)]
            for key in per_node[port]:
                assert int(_command(port, "CLUSTER KEYSLOT", key)) == slot(key), key
        holding = {port for port, found in per_node.items() if any(k.endswith(":conv") for k in found)}
        assert len(holding) >= 2, per_node  # conversations spread over the masters
        for session in sessions:
            lines = [json.loads(raw) for raw in view.lrange(keys.transcript(f"web:{session}"), 0, -1)]
            assert len(lines) == (6 if session == sessions[0] else 4), (session, lines)  # questions and answers
            assert [line["meta"].get("message_id") for line in lines].count(f"{session}-1") == 1  # never twice
        assert view.hget(keys.agent_ticket(ticket), "status") == "resolved"
    finally:
        view.close()


def test_a_cluster_url_names_its_seed_nodes_or_is_refused_in_one_line() -> None:
    for bad in ("redis+cluster://", "redis+cluster://:secret@host-without-port"):
        with pytest.raises(ConfigError, match=r"redis\+cluster://\[:PASSWORD@\]HOST:PORT") as refused:
            connect(bad)
        assert "secret" not in str(refused.value)
    assert StoreConfig(url="redis+cluster://10.0.0.1:6379", wait_replicas=1).problems() == [
        "store.wait_replicas: not supported with redis+cluster:// (set it to 0)"]
    assert StoreConfig(url="redis+cluster://10.0.0.1:6379,10.0.0.2:6379").problems() == []
