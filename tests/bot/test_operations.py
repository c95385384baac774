"""What an operations team plugs in: readiness, metrics access, JSON logs, and the worker
process set-up (TCP_NODELAY on the shared socket, one BLAS thread, bounded build threads)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from bot import metrics
from bot.app import create_app
from bot.config import (
    ChannelsConfig,
    Config,
    IntentsConfig,
    KnowledgeConfig,
    MetricsConfig,
    StoreConfig,
    TelegramConfig,
)
from bot.logs import masked_id
from bot.workers import nodelay_listener
from knowledge import embeddings
from tests.bot.conftest import RedisProcess
from tests.browser import ROOT, free_port


@pytest.fixture(autouse=True)
def metrics_on() -> Iterator[None]:
    """``metrics.enabled`` is per process: a test that turns it off must not leave it off."""
    metrics.configure(True)
    yield
    metrics.configure(True)


def lexical(cache_dir: Path, **sections: Any) -> Config:
    config = Config(knowledge=KnowledgeConfig(cache_dir=str(cache_dir)), intents=IntentsConfig(embeddings=False))
    return dataclasses.replace(config, **sections)


def test_the_shared_worker_socket_hands_out_nodelay_connections() -> None:
    """With --workers N the listener is bound by Kefu; accepted sockets must not wait for
    delayed ACKs (asyncio does not set TCP_NODELAY on them itself)."""
    listener = nodelay_listener("127.0.0.1", 0)
    listener.listen()
    with listener, socket.create_connection(listener.getsockname()) as client:
        accepted, _ = listener.accept()
        with accepted:
            assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
            client.sendall(b"ping")
            assert accepted.recv(4) == b"ping"


def test_a_serving_worker_runs_one_blas_thread(cache_dir: Path) -> None:
    """In a fresh process with a BLAS pool of several threads (the test process itself runs
    one, tests/conftest.py), starting the app, as a worker's main thread does, leaves one."""
    script = f"""
import asyncio
from threadpoolctl import threadpool_limits
from bot.app import compose
from bot.config import Config, IntentsConfig, KnowledgeConfig
from bot.workers import blas_threads
threadpool_limits(limits=2, user_api="blas")
before = blas_threads()
config = Config(knowledge=KnowledgeConfig(cache_dir={str(cache_dir)!r}), intents=IntentsConfig(embeddings=False))
app = compose(config).app
async def main() -> None:
    async with app.router.lifespan_context(app):
        print(before, blas_threads())
asyncio.run(main())
"""
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, cwd=ROOT,
                         timeout=120, check=True).stdout.strip().splitlines()[-1]
    before, after = (json.loads(part + "]") for part in out[:-1].split("] "))
    assert before and set(before) == {2}, before
    assert set(after) == {1}, after


def test_index_builds_leave_cores_for_serving(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "cpu_count", lambda: 8)
    embeddings.set_build_threads(0)
    assert embeddings.build_threads() == 4  # half the box by default
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    assert embeddings.build_threads() == 1
    embeddings.set_build_threads(3)  # knowledge.build_threads
    try:
        assert embeddings.build_threads() == 3
    finally:
        embeddings.set_build_threads(0)


def test_readyz_is_ready_with_every_check_named(cache_dir: Path) -> None:
    with TestClient(create_app(lexical(cache_dir))) as client:
        ready = client.get("/readyz")
        assert ready.status_code == 200, ready.text
        body = ready.json()
        assert body["ready"] is True and body["why"] == []
        assert body["checks"]["store"] == {"ok": True}
        assert body["checks"]["knowledge"]["entries"] > 0
        assert body["checks"]["channels"] == {"web": {"ok": True}}


def test_readyz_says_why_when_redis_is_down_while_healthz_is_503(private_redis: RedisProcess,
                                                                 cache_dir: Path) -> None:
    with TestClient(create_app(lexical(cache_dir, store=StoreConfig(url=private_redis.url)))) as client:
        assert client.get("/readyz").status_code == 200
        private_redis.stop()
        down = client.get("/readyz")
        assert down.status_code == 503
        assert down.json()["ready"] is False and down.json()["why"][0].startswith("store: cannot reach the store")
        private_redis.start()
        assert client.get("/readyz").status_code == 200


def test_readyz_waits_for_telegram_while_healthz_says_alive(cache_dir: Path) -> None:
    """Telegram unreachable at start: Kefu starts (web chat works), but is not ready."""
    telegram = TelegramConfig(enabled=True, token="123456:ABCDEF", mode="webhook",
                              webhook_url="https://kefu.example/webhooks/telegram", webhook_secret="s" * 20,
                              base_url=f"http://127.0.0.1:{free_port()}/bot")
    config = lexical(cache_dir, channels=ChannelsConfig(telegram=telegram))
    with TestClient(create_app(config)) as client:
        assert client.get("/healthz").status_code == 200
        not_ready = client.get("/readyz")
        assert not_ready.status_code == 503
        body = not_ready.json()
        assert body["checks"]["channels"]["telegram"]["ok"] is False
        assert "not connected to Telegram yet" in body["why"][0]
        assert body["checks"]["channels"]["web"] == {"ok": True}


def test_metrics_need_the_token_or_a_loopback_client(cache_dir: Path) -> None:
    with TestClient(create_app(lexical(cache_dir))) as client:  # TestClient's peer is not loopback
        refused = client.get("/metrics")
        assert refused.status_code == 403 and "metrics.token" in refused.json()["error"]
    with TestClient(create_app(lexical(cache_dir, metrics=MetricsConfig(token="scrape-me")))) as client:
        assert client.post("/api/chat", json={"session": "metrics-1", "text": "怎么退货"}).status_code == 200
        assert client.get("/metrics").status_code == 401
        assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
        scraped = client.get("/metrics", headers={"Authorization": "Bearer scrape-me"})
        assert scraped.status_code == 200
        assert scraped.headers["content-type"].startswith("text/plain")
        assert 'kefu_turns_total{channel="web",outcome="answer"}' in scraped.text
        assert "kefu_queue_length 0.0" in scraped.text and "kefu_store_up 1.0" in scraped.text
    with TestClient(create_app(lexical(cache_dir, metrics=MetricsConfig(enabled=False)))) as client:
        assert client.get("/metrics").status_code == 404


def test_json_logs_one_object_per_line_with_the_turn_and_a_masked_conversation(tmp_path: Path,
                                                                               cache_dir: Path) -> None:
    config = tmp_path / "json.yaml"
    config.write_text(f"knowledge:\n  cache_dir: {cache_dir}\nintents:\n  embeddings: false\n"
                      "logging:\n  format: json\n", encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "bot", "--config", str(config), "chat"], cwd=ROOT,
                          input="怎么退货\n转人工\n", capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    records = [json.loads(line) for line in done.stderr.splitlines() if line.strip()]  # every line parses
    turns = [r for r in records if "turn_id" in r]
    assert [t["outcome"] for t in turns] == ["answer", "handoff"]
    assert turns[1]["reason"] == "human_request"
    for turn in turns:
        assert {"ts", "level", "logger", "pid", "message", "channel", "conversation", "latency_ms"} <= set(turn)
        assert turn["channel"] == "terminal" and turn["latency_ms"] > 0
        assert turn["conversation"].startswith("terminal:")
    assert turns[0]["conversation"] == turns[1]["conversation"]  # one conversation, still recognisable
    assert turns[0]["turn_id"] != turns[1]["turn_id"]
    # the platform's user id is hashed, not written out (security.mask_logs)
    assert masked_id("telegram:5550001234") == "telegram:" + hashlib.sha256(b"5550001234").hexdigest()[:12]


def test_a_bad_log_format_is_one_clear_line(tmp_path: Path) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text("logging:\n  format: xml\n", encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "bot", "--config", str(config), "chat"], cwd=ROOT,
                          input="", capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1] == (
        f"kefu: error: {config}: logging.format: expected text or json, got 'xml'")


def sample(name: str, **labels: str) -> float:
    from prometheus_client import REGISTRY

    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_refused_sends_and_held_work_show_in_the_metrics() -> None:
    """A platform refusing twice: two send failures counted, one message held, then none."""
    from bot.channels.held import HeldWork, PlatformUnavailable

    held = HeldWork("telegram sends", retry_on=(PlatformUnavailable,), delays=(0.01,))
    failures_before = sample("kefu_send_failures_total", channel="telegram")
    attempts: list[int] = []
    seen_held: list[float] = []

    async def send() -> None:
        attempts.append(1)
        seen_held.append(sample("kefu_held_messages", queue="telegram sends"))
        if len(attempts) < 3:
            raise PlatformUnavailable("502 from the Bot API")

    assert await held.now_or_held("reply-1", send) is False
    await held.idle()
    assert len(attempts) == 3
    assert sample("kefu_send_failures_total", channel="telegram") - failures_before == 2
    assert seen_held[1:] == [1.0, 1.0]  # held while it was being retried ...
    assert sample("kefu_held_messages", queue="telegram sends") == 0  # ... and no longer once sent


async def test_desk_events_count_tickets_and_ratings() -> None:
    from bot.agents.events import EventBus
    from bot.storage.client import connect

    bus = EventBus(connect("memory://"))
    opened, fives = sample("kefu_tickets_total", event="opened"), sample("kefu_csat_ratings_total", rating="5")
    await bus.publish("ticket", ticket={"id": "t1"}, change="opened")
    await bus.publish("rating", ticket_id="t1", rating=5)
    await bus.publish("rating", ticket_id="t1", comment="很好")  # a comment is not a second rating
    assert sample("kefu_tickets_total", event="opened") - opened == 1
    assert sample("kefu_csat_ratings_total", rating="5") - fives == 1


def test_metrics_still_answer_while_redis_is_down_and_count_the_failures(private_redis: RedisProcess,
                                                                         cache_dir: Path) -> None:
    config = lexical(cache_dir, store=StoreConfig(url=private_redis.url), metrics=MetricsConfig(token="t"))
    auth = {"Authorization": "Bearer t"}
    with TestClient(create_app(config)) as client:
        assert "kefu_store_up 1.0" in client.get("/metrics", headers=auth).text
        errors = sample("kefu_redis_errors_total", where="http")
        private_redis.stop()
        down = client.post("/api/chat", json={"session": "metrics-down", "text": "怎么退货"})
        assert down.status_code == 503
        scraped = client.get("/metrics", headers=auth)
        assert scraped.status_code == 200  # Prometheus still learns that Redis is gone
        assert "kefu_store_up 0.0" in scraped.text and "kefu_ready 0.0" in scraped.text
        assert sample("kefu_redis_errors_total", where="http") - errors == 1
        private_redis.start()
        assert "kefu_ready 1.0" in client.get("/metrics", headers=auth).text
