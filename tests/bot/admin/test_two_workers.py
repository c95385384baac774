"""Two real ``kefu serve`` workers on one Redis (with the production retrieval: embeddings and the
classifier): an edit saved through one worker is answered by the other within seconds, without
a restart; so is a rollback."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.bot.admin.test_admin_browser import PASSWORD, admin_config
from tests.bot.agents.test_workers import Worker, wipe
from tests.conftest import REDIS_URL, require_redis

pytestmark = pytest.mark.redis
NEW_ANSWER = "退款现在当天到账，最快5分钟。"


@pytest.fixture
def workers(tmp_path: Path, cache_dir: Path) -> Iterator[tuple[Worker, Worker]]:
    require_redis()
    wipe()
    config = tmp_path / "serve.yaml"
    config.write_text(admin_config(cache_dir, REDIS_URL, embeddings=True), encoding="utf-8")
    a, b = Worker(config, tmp_path / "a.log"), Worker(config, tmp_path / "b.log")
    try:
        yield a.start(), b.start()
    finally:
        a.stop()
        b.stop()
        wipe()


def answer(base: str, session: str, text: str) -> str:
    r = httpx.post(f"{base}/api/chat", json={"session": session, "text": text}, timeout=60)
    assert r.status_code == 200, r.text
    return "\n".join(reply["text"] for reply in r.json()["replies"])


def wait_until_answered(base: str, text: str, expected: str, within: float = 10.0) -> float:
    """Seconds until a new customer on ``base`` gets ``expected`` for ``text``."""
    started = time.monotonic()
    n = 0
    while True:
        n += 1
        if expected in answer(base, f"poll-{int(started)}-{n:04d}", text):
            return time.monotonic() - started
        assert time.monotonic() - started < within, f"{base} still answers the old text after {within} s"
        time.sleep(0.2)


def test_edit_on_one_worker_is_answered_by_the_other(workers: tuple[Worker, Worker]) -> None:
    a, b = workers
    assert "原路退回" in answer(b.base, "before-0001", "退款多久到账")
    admin = httpx.Client(base_url=a.base, timeout=60)
    csrf = {"X-CSRF-Token": admin.post("/api/agent/login", json={"name": "boss", "password": PASSWORD}).json()["csrf"]}
    entry = admin.get("/api/admin/entries/refund-time").json()["entry"]
    saved = admin.put("/api/admin/entries/refund-time", headers=csrf,
                      json={**entry, "answer": {**entry["answer"], "zh": NEW_ANSWER}})
    assert saved.status_code == 200, saved.text
    # what the console waits for before saying "saved": once every worker serves the version,
    # the other worker answers with it at once
    version = saved.json()["version"]
    deadline = time.monotonic() + 10
    while (status := admin.get("/api/admin/status").json())["serving"] < version:
        assert time.monotonic() < deadline, status
        time.sleep(0.1)
    assert len(status["workers"]) == 2
    assert NEW_ANSWER in answer(b.base, "after-0001", "退款多久到账")
    assert wait_until_answered(b.base, "退款多久到账", NEW_ANSWER) < 10
    assert httpx.get(f"{b.base}/healthz").json()["knowledge_version"] == saved.json()["version"]

    back = admin.post("/api/admin/entries/refund-time/rollback", headers=csrf, json={"version": saved.json()["version"] - 1})
    assert back.status_code == 200, back.text
    assert wait_until_answered(b.base, "退款多久到账", "原路退回") < 10
