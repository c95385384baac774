"""Two real ``kefu serve`` workers on one Redis; one is SIGKILLed while tickets are queued and
while one is claimed.  After the restart nothing is lost and nothing is duplicated."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from bot import keys
from tests.bot.agents.test_console_browser import PASSWORD, console_config
from tests.browser import ROOT, free_port
from tests.conftest import REDIS_URL, require_redis

pytestmark = pytest.mark.redis


class Worker:
    """One ``kefu serve`` process on a fixed port, so a restart comes back at the same address."""

    def __init__(self, config: Path, log: Path) -> None:
        self.config, self.log_path = config, log
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Worker:
        log = self.log_path.open("a")
        self.proc = subprocess.Popen([sys.executable, "-m", "bot", "--config", str(self.config), "serve",
                                      "--port", str(self.port)], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 180
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"kefu serve exited: {self.log_path.read_text()}")
            try:
                if httpx.get(f"{self.base}/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("kefu serve did not become healthy in time")
            time.sleep(0.2)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def wipe() -> None:
    client = redis.Redis.from_url(REDIS_URL)
    for key in client.scan_iter(match=f"{keys.PREFIX}*", count=500):
        client.delete(key)


@pytest.fixture
def workers(tmp_path: Path, cache_dir: Path) -> Iterator[tuple[Worker, Worker]]:
    require_redis()
    wipe()
    config = tmp_path / "serve.yaml"
    config.write_text(console_config(cache_dir, REDIS_URL), encoding="utf-8")
    a, b = Worker(config, tmp_path / "a.log"), Worker(config, tmp_path / "b.log")
    try:
        yield a.start(), b.start()
    finally:
        a.stop()
        b.stop()
        wipe()


def chat(base: str, session: str, text: str, message_id: str | None = None) -> dict[str, Any]:
    body: dict[str, object] = {"session": session, "text": text}
    if message_id:
        body["message_id"] = message_id
    r = httpx.post(f"{base}/api/chat", json=body, timeout=60)
    assert r.status_code == 200, r.text
    return dict(r.json())


def test_killed_worker_loses_and_duplicates_nothing(workers: tuple[Worker, Worker]) -> None:
    a, b = workers
    first = chat(a.base, "customer-0001", "我要投诉，快递丢了，太差劲了", message_id="retry-me")
    assert first["state"] == "waiting"
    assert chat(a.base, "customer-0002", "转人工")["state"] == "waiting"
    a.kill()  # two tickets queued, the worker that queued them is gone

    agent = httpx.Client(base_url=b.base, timeout=30)
    csrf = {"X-CSRF-Token": agent.post("/api/agent/login", json={"name": "li", "password": PASSWORD}).json()["csrf"]}
    queued = agent.get("/api/agent/tickets").json()["queued"]
    assert sorted(t["conversation_id"] for t in queued) == ["web:customer-0001", "web:customer-0002"]
    # the platform retries the complaint on the surviving worker: same message id, no second turn
    assert chat(b.base, "customer-0001", "我要投诉，快递丢了，太差劲了", message_id="retry-me")["duplicate"] is True
    assert len(agent.get("/api/agent/tickets").json()["queued"]) == 2

    complaint = next(t for t in queued if t["conversation_id"] == "web:customer-0001")
    other = next(t for t in queued if t["conversation_id"] == "web:customer-0002")
    assert agent.post(f"/api/agent/tickets/{complaint['id']}/claim", headers=csrf).status_code == 200
    a.start()
    # the same session works on the restarted worker (sessions live in Redis), and two agents racing
    # for one ticket across the two workers get exactly one winner
    boss = httpx.Client(base_url=a.base, timeout=30)
    boss_csrf = {"X-CSRF-Token": boss.post("/api/agent/login",
                                           json={"name": "boss", "password": PASSWORD}).json()["csrf"]}
    codes: list[int] = []

    def grab(client: httpx.Client, headers: dict[str, str]) -> None:
        codes.append(client.post(f"/api/agent/tickets/{other['id']}/claim", headers=headers).status_code)

    racers = [threading.Thread(target=grab, args=(agent, csrf)), threading.Thread(target=grab, args=(boss, boss_csrf))]
    for t in racers:
        t.start()
    for t in racers:
        t.join()
    assert sorted(codes) == [200, 409]
    owner = agent.get(f"/api/agent/tickets/{other['id']}").json()["ticket"]["owner"]
    owner_client, owner_csrf = (boss, boss_csrf) if owner == "boss" else (agent, csrf)
    assert owner_client.post(f"/api/agent/tickets/{other['id']}/messages", json={"text": "您好，我来帮您"},
                             headers=owner_csrf).status_code == 200
    a.kill()  # now with both tickets claimed
    a.start()

    agent = httpx.Client(base_url=a.base, cookies=agent.cookies, timeout=30)  # the agent's browser moves over
    inbox = agent.get("/api/agent/tickets").json()
    assert inbox["queued"] == []
    claimed = sorted(t["id"] for t in inbox["mine"] + inbox["others"])
    assert claimed == sorted([complaint["id"], other["id"]])
    # the customer keeps writing: the message joins the ticket, the bot stays quiet
    joined = chat(b.base, "customer-0001", "订单号 12345")
    assert joined["state"] == "agent" and joined["replies"] == [] and joined["decision"] is None
    detail = agent.get(f"/api/agent/tickets/{complaint['id']}").json()
    assert detail["transcript"][-1]["text"] == "订单号 12345"
    assert agent.post(f"/api/agent/tickets/{complaint['id']}/messages", json={"text": "收到，正在查"},
                      headers=csrf).status_code == 200
    seen = httpx.get(f"{b.base}/api/chat/customer-0001/messages", params={"after": 0}).json()["messages"]
    assert [m["text"] for m in seen if m["role"] == "agent"] == ["收到，正在查"]
    assert agent.post(f"/api/agent/tickets/{complaint['id']}/resolve", headers=csrf).status_code == 200
    assert "意见" in chat(b.base, "customer-0001", "5")["replies"][0]["text"]  # asked for a comment next
    stored = agent.get(f"/api/agent/tickets/{complaint['id']}").json()["ticket"]
    assert stored["status"] == "resolved" and stored["rating"] == 5
    client = redis.Redis.from_url(REDIS_URL, decode_responses=True)
    assert client.llen(keys.agent_customer_tickets("web", "customer-0001")) == 1  # one ticket, never two
    assert client.xlen(keys.agent_ratings()) == 1
