"""Scale-out and faults with real processes: ``kefu serve --workers N`` on one Redis, and a Redis
server that goes away mid-conversation and comes back."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import redis
from starlette.testclient import TestClient

from bot import keys
from bot.app import create_app
from bot.config import Config, IntentsConfig, KnowledgeConfig, StoreConfig
from tests.bot.agents.test_workers import wipe
from tests.bot.conftest import RedisProcess
from tests.browser import ROOT, kefu_server
from tests.conftest import REDIS_URL, require_redis

pytestmark = pytest.mark.redis


def serve_config(cache_dir: Path, store_url: str) -> str:
    return (f"knowledge:\n  cache_dir: {cache_dir}\nstore:\n  url: {store_url}\n"
            "intents:\n  embeddings: false\n")


def chat(base: str, session: str, text: str, message_id: str | None = None) -> httpx.Response:
    body = {"session": session, "text": text, **({"message_id": message_id} if message_id else {})}
    # a fresh connection per request, so the kernel may hand it to any worker
    return httpx.post(f"{base}/api/chat", json=body, timeout=60, headers={"Connection": "close"})


def worker_pids(base: str) -> set[int]:
    """The pids of both workers behind ``base``, once each has served a request (fresh connections,
    so the kernel may hand each to either worker)."""
    pids: set[int] = set()
    deadline = time.monotonic() + 60
    while len(pids) < 2 and time.monotonic() < deadline:
        pids.add(httpx.get(f"{base}/healthz", headers={"Connection": "close"}).json()["worker_pid"])
    assert len(pids) == 2, "both workers should serve requests"
    return pids


def test_workers_share_conversations_through_redis(tmp_path: Path, cache_dir: Path) -> None:
    require_redis()
    wipe()
    try:
        with kefu_server(serve_config(cache_dir, REDIS_URL), tmp_path, "--workers", "2") as base:
            worker_pids(base)

            handoff = chat(base, "shared-session", "转人工")
            assert handoff.json()["state"] == "waiting"
            for n in range(12):  # whichever worker takes it, the customer is still waiting for an agent
                r = chat(base, "shared-session", f"补充信息 {n}")
                assert r.status_code == 200 and r.json()["state"] == "waiting", r.text
            client = redis.Redis.from_url(REDIS_URL)
            assert client.llen(keys.transcript("web:shared-session")) == 1 + 1 + 12 + 1  # one hold note only
    finally:
        wipe()


def test_workers_need_a_shared_store(tmp_path: Path, cache_dir: Path) -> None:
    config = tmp_path / "memory.yaml"
    config.write_text(serve_config(cache_dir, "memory://"), encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "bot", "--config", str(config), "serve", "--workers", "2"],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "needs a shared store: set store.url to redis://" in done.stderr


def test_redis_outage_delays_but_loses_nothing(private_redis: RedisProcess, cache_dir: Path) -> None:
    config = Config(store=StoreConfig(url=private_redis.url), knowledge=KnowledgeConfig(cache_dir=str(cache_dir)),
                    intents=IntentsConfig(embeddings=False))
    with TestClient(create_app(config)) as client:
        first = client.post("/api/chat", json={"session": "session-s", "text": "怎么退货", "message_id": "m1"})
        assert first.status_code == 200 and first.json()["replies"]
        resent = client.post("/api/chat", json={"session": "session-s", "text": "怎么退货", "message_id": "m1"})
        assert resent.json()["duplicate"] and resent.json()["replies"] == first.json()["replies"]  # answered once,
        # shown again: the first response was lost on the way

        private_redis.stop()
        down = client.post("/api/chat", json={"session": "session-s", "text": "退款多久到账", "message_id": "m2"})
        assert down.status_code == 503 and down.json()["retry"] is True
        assert down.headers["Retry-After"] and "稍候" in down.json()["replies"][0]["text"]
        assert client.get("/healthz").status_code == 503

        private_redis.start()  # same port, same append-only file: the conversation is still there
        again = client.post("/api/chat", json={"session": "session-s", "text": "退款多久到账", "message_id": "m2"})
        assert again.status_code == 200, again.text
        assert again.json()["replies"] and not again.json()["duplicate"]
        assert client.get("/healthz").status_code == 200
        stored = redis.Redis.from_url(private_redis.url).lrange(keys.transcript("web:session-s"), 0, -1)
        customer = [line for line in stored if b'"customer"' in line]
        assert len(customer) == 2  # the first question and the resent one, each once
