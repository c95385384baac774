"""Upgrades: the new code starts on data the previous (unversioned) release wrote and carries
its conversations on; data newer than the code is refused in one line; ``kefu migrate``."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from starlette.testclient import TestClient

from bot.app import create_app
from bot.config import Config, IntentsConfig, KnowledgeConfig, StoreConfig
from bot.migrations import DATA_VERSION
from tests.bot.agents.test_workers import wipe
from tests.browser import ROOT, free_port
from tests.conftest import REDIS_URL, require_redis

pytestmark = pytest.mark.redis

# A conversation exactly as the release before the data version wrote it (literal JSON, so a
# change of the stored shape shows up here as a failed upgrade).
OLD_CONVERSATION = {
    "id": "web:upgrade-customer", "channel": "web", "user_id": "upgrade-customer", "chat_id": "upgrade-customer",
    "state": "bot", "language": "zh", "profile": {}, "pending_suggestions": [], "failures": 0, "handoff": None,
    "updated_at": 1764000000.0, "pending_action": "", "slots": {},
}
OLD_LINES = [
    {"role": "customer", "text": "怎么退货", "at": 1764000000.0,
     "meta": {"message_id": "old-1", "decision": {"action": "answer", "entry_id": "return-policy",
                                                  "confidence": 0.9, "reason": ""}}},
    {"role": "bot", "text": "签收后 7 天内可以无理由退货。", "at": 1764000000.0, "meta": {}},
]


def write_previous_release_data(client: redis.Redis) -> None:
    client.set("kefu:conv:web:upgrade-customer", json.dumps(OLD_CONVERSATION, ensure_ascii=False))
    client.rpush("kefu:transcript:web:upgrade-customer", *(json.dumps(line, ensure_ascii=False) for line in OLD_LINES))
    client.set("kefu:seen:msg:web:old-1", "1764000000.0")


def kefu(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bot", "--config", str(config), *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


@pytest.fixture
def shared_store() -> Iterator[redis.Redis]:
    require_redis()
    wipe()
    client = redis.Redis.from_url(REDIS_URL, decode_responses=True)
    yield client
    wipe()


def test_new_code_on_previous_release_data_carries_the_conversation_on(shared_store: redis.Redis,
                                                                         cache_dir: Path) -> None:
    write_previous_release_data(shared_store)
    assert shared_store.get("kefu:data-version") is None
    config = Config(store=StoreConfig(url=REDIS_URL), knowledge=KnowledgeConfig(cache_dir=str(cache_dir)),
                    intents=IntentsConfig(embeddings=False))
    with TestClient(create_app(config)) as client:
        assert shared_store.get("kefu:data-version") == str(DATA_VERSION)  # migrated at start
        resent = client.post("/api/chat", json={"session": "upgrade-customer", "text": "怎么退货", "message_id": "old-1"})
        assert resent.json()["duplicate"] is True  # the old release's dedupe marker still counts, and
        assert [r["text"] for r in resent.json()["replies"]] == ["签收后 7 天内可以无理由退货。"]  # its answer reads back
        follow_up = client.post("/api/chat", json={"session": "upgrade-customer", "text": "退款多久到账"})
        assert follow_up.status_code == 200 and follow_up.json()["replies"], follow_up.text
        assert follow_up.json()["language"] == "zh" and follow_up.json()["state"] == "bot"
    stored = [json.loads(raw) for raw in shared_store.lrange("kefu:transcript:web:upgrade-customer", 0, -1)]
    assert stored[:2] == OLD_LINES  # the old lines untouched, the new turn appended after them
    assert len(stored) >= 4 and stored[2]["text"] == "退款多久到账"


def test_data_newer_than_the_code_is_refused_in_one_line(shared_store: redis.Redis, tmp_path: Path,
                                                         cache_dir: Path) -> None:
    write_previous_release_data(shared_store)
    shared_store.set("kefu:data-version", DATA_VERSION + 1)
    config = tmp_path / "kefu.yaml"
    config.write_text(f"store:\n  url: {REDIS_URL}\nknowledge:\n  cache_dir: {cache_dir}\n"
                      "intents:\n  embeddings: false\n", encoding="utf-8")
    port = str(free_port())  # a real port: `kefu serve` refuses port 0 before anything else
    for command in (["serve", "--port", port], ["serve", "--workers", "2", "--port", port], ["migrate"]):
        done = kefu(config, *command)
        assert done.returncode == 2, (command, done.stderr)
        last = done.stderr.strip().splitlines()[-1]
        assert last.startswith(f"kefu: error: the store holds data version {DATA_VERSION + 1}, newer than this Kefu")
        assert "Traceback" not in done.stderr
    assert shared_store.get("kefu:data-version") == str(DATA_VERSION + 1)  # nothing rewritten
    assert shared_store.exists("kefu:conv:web:upgrade-customer")


def test_kefu_migrate_reports_each_step_then_nothing_to_do(shared_store: redis.Redis, tmp_path: Path) -> None:
    write_previous_release_data(shared_store)
    config = tmp_path / "kefu.yaml"
    config.write_text(f"store:\n  url: {REDIS_URL}\n", encoding="utf-8")
    before = kefu(config, "migrate", "--check")
    assert before.returncode == 0 and f"data version 0; this Kefu: {DATA_VERSION}; 1 migration(s) pending" in before.stdout
    done = kefu(config, "migrate")
    assert done.returncode == 0, done.stderr
    assert "data version 0 → 1: stamp the data version" in done.stdout
    assert shared_store.get("kefu:data-version") == str(DATA_VERSION)
    after = kefu(config, "migrate", "--check")
    assert f"data version {DATA_VERSION}; this Kefu: {DATA_VERSION}; nothing to do" in after.stdout
    again = kefu(config, "migrate")
    assert f"data version {DATA_VERSION}: up to date" in again.stdout
