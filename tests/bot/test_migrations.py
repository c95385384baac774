"""Upgrades: the new code refuses data of the previous layout until ``kefu migrate`` moved it,
then carries its conversations, tickets, accounts and knowledge on; data newer than the code is
refused in one line; a migration cut off anywhere resumes."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import redis.asyncio as aioredis
from starlette.testclient import TestClient

from bot import keys, migrations
from bot.agents.auth import hash_password
from bot.app import create_app
from bot.config import Config, IntentsConfig, KnowledgeConfig, StoreConfig
from bot.migrations import _RENAMED, DATA_VERSION, MigrationNeeded, migrate
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


# A conversation mid-handoff: waiting in the queue for an agent, with its ticket.
WAITING = {**OLD_CONVERSATION, "id": "web:waiting-customer", "user_id": "waiting-customer",
           "chat_id": "waiting-customer", "state": "waiting",
           "handoff": {"reason": "human_request", "detail": "", "candidates": []}}
WAITING_LINES = [{"role": "customer", "text": "转人工", "at": 1764000100.0, "meta": {"message_id": "old-2"}},
                 {"role": "bot", "text": "正在为您转接人工客服。", "at": 1764000100.0, "meta": {}}]
TICKET = {"id": "t0ld", "conversation_id": "web:waiting-customer", "channel": "web", "user_id": "waiting-customer",
          "reason": "human_request", "detail": "", "language": "zh", "priority": "1",
          "created_at": "1764000100.0", "status": "queued", "after_hours": "", "summary": "转人工",
          "customer_name": "", "context": "{}", "group": "", "left_message": ""}
PASSWORD = "升级-password"
KB_ENTRY = {"id": "opening-hours", "questions": ["几点上班", "opening hours"],
            "answer": {"zh": "每天九点到六点。", "en": "From nine to six."}}


def write_previous_release_data(client: redis.Redis) -> None:
    """The release before the data version (layout 1, literal key names): two conversations,
    one of them waiting for an agent with its ticket, an agent account, knowledge at version 3
    with its audit log, the dashboard's counters and a login counter."""
    client.set("kefu:conv:web:upgrade-customer", json.dumps(OLD_CONVERSATION, ensure_ascii=False))
    client.rpush("kefu:transcript:web:upgrade-customer", *(json.dumps(line, ensure_ascii=False) for line in OLD_LINES))
    client.set("kefu:seen:msg:web:old-1", "done:1764000000.0", ex=86_400)
    client.set("kefu:conv:web:waiting-customer", json.dumps(WAITING, ensure_ascii=False))
    client.rpush("kefu:transcript:web:waiting-customer", *(json.dumps(line, ensure_ascii=False)
                                                           for line in WAITING_LINES))
    client.set("kefu:transcript-seq:web:waiting-customer", 2)
    client.set("kefu:seen:msg:web:old-2", "done:1764000100.0", ex=86_400)
    client.hset("kefu:agents:ticket:t0ld", mapping=TICKET)  # type: ignore[arg-type]
    client.rpush("kefu:agents:ticket:t0ld:notes", json.dumps({"agent": "", "text": "VIP", "at": 1.0, "kind": "note"}))
    client.set("kefu:agents:open:web:waiting-customer", "t0ld")
    client.zadd("kefu:agents:queue", {"t0ld": 1e10 + 1764000100.0})
    client.rpush("kefu:agents:customer:web:waiting-customer", "t0ld")
    client.hset("kefu:agents:users", "li", json.dumps({"password_hash": hash_password(PASSWORD), "role": "agent"}))
    client.hset("kefu:kb:entries", "opening-hours", json.dumps({**KB_ENTRY, "_pos": 0}, ensure_ascii=False))
    client.set("kefu:kb:version", 3)
    client.rpush("kefu:kb:audit", *(json.dumps({"seq": n, "version": n, "at": 1.0, "who": "boss", "action": "edit",
                                                "entry_id": "opening-hours", "before": None, "after": KB_ENTRY},
                                               ensure_ascii=False) for n in (1, 2, 3)))
    client.hset("kefu:admin:metrics:2025-11-24", mapping={"turns": 2, "conversations": 2})
    client.rpush("kefu:admin:unanswered", json.dumps({"text": "发票怎么开", "at": 1764000000.0}, ensure_ascii=False))
    client.set("kefu:agents:login-attempts:name:abc", 2, ex=900)


def old_layout_keys(client: redis.Redis) -> list[str]:
    """Keys still under a version-1 name that version 2 renamed."""
    return sorted(str(k) for old, _ in _RENAMED for k in client.scan_iter(match=old if not old.endswith(":")
                                                                           else f"{old}*"))


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


def test_new_code_refuses_the_previous_layout_until_kefu_migrate(shared_store: redis.Redis, tmp_path: Path,
                                                                 cache_dir: Path) -> None:
    write_previous_release_data(shared_store)
    config = tmp_path / "kefu.yaml"
    config.write_text(f"store:\n  url: {REDIS_URL}\nknowledge:\n  cache_dir: {cache_dir}\n"
                      "intents:\n  embeddings: false\n", encoding="utf-8")
    refused = kefu(config, "serve", "--port", str(free_port()))
    assert refused.returncode == 2, refused.stderr
    last = refused.stderr.strip().splitlines()[-1]
    assert last.startswith("kefu: error: the store holds data version 0; this Kefu needs 2") and "`kefu migrate`" in last
    assert "Traceback" not in refused.stderr
    app_config = Config(store=StoreConfig(url=REDIS_URL), knowledge=KnowledgeConfig(cache_dir=str(cache_dir)),
                        intents=IntentsConfig(embeddings=False))
    with pytest.raises(MigrationNeeded, match="kefu migrate"), TestClient(create_app(app_config)):
        pass  # an app started in-process is refused the same way, before it touches the data
    assert shared_store.get("kefu:data-version") is None and shared_store.exists("kefu:conv:web:upgrade-customer")


def test_after_kefu_migrate_the_new_code_carries_everything_on(shared_store: redis.Redis, tmp_path: Path,
                                                               cache_dir: Path) -> None:
    write_previous_release_data(shared_store)
    config = tmp_path / "kefu.yaml"
    config.write_text(f"store:\n  url: {REDIS_URL}\n", encoding="utf-8")
    done = kefu(config, "migrate")
    assert done.returncode == 0, done.stderr
    assert "data version 1 → 2: hash-tagged key names" in done.stdout
    assert old_layout_keys(shared_store) == []
    assert shared_store.ttl(keys.agent_login_attempts("name", "abc")) > 0  # TTLs moved with the keys
    app_config = Config(store=StoreConfig(url=REDIS_URL), knowledge=KnowledgeConfig(cache_dir=str(cache_dir)),
                        intents=IntentsConfig(embeddings=False))
    with TestClient(create_app(app_config)) as client:
        assert shared_store.get("kefu:data-version") == str(DATA_VERSION)
        health = client.get("/healthz").json()
        assert health["knowledge_version"] == 3 and health["knowledge_entries"] == 1  # the stored knowledge
        resent = client.post("/api/chat", json={"session": "upgrade-customer", "text": "怎么退货", "message_id": "old-1"})
        assert resent.json()["duplicate"] is True  # the old release's dedupe marker still counts, and
        assert [r["text"] for r in resent.json()["replies"]] == ["签收后 7 天内可以无理由退货。"]  # its answer reads back
        follow_up = client.post("/api/chat", json={"session": "upgrade-customer", "text": "几点上班"})
        assert follow_up.status_code == 200 and follow_up.json()["replies"][0]["text"] == "每天九点到六点。"
        assert follow_up.json()["language"] == "zh" and follow_up.json()["state"] == "bot"
        # the handoff goes on: the waiting customer keeps their place, the stored agent takes it
        again = client.post("/api/chat", json={"session": "waiting-customer", "text": "转人工", "message_id": "old-2"})
        assert again.json()["duplicate"] is True
        login = client.post("/api/agent/login", json={"name": "li", "password": PASSWORD})
        assert login.status_code == 200, login.text
        csrf = {"X-CSRF-Token": login.json()["csrf"]}
        queued = client.get("/api/agent/tickets").json()["queued"]
        assert [(t["id"], t["position"]) for t in queued] == [("t0ld", 1)]
        assert client.post("/api/agent/tickets/t0ld/claim", headers=csrf).json()["ticket"]["owner"] == "li"
        detail = client.get("/api/agent/tickets/t0ld").json()
        assert [n["text"] for n in detail["notes"]] == ["VIP"] and detail["transcript"][0]["text"] == "转人工"
        assert client.post("/api/agent/tickets/t0ld/resolve", headers=csrf).json()["ticket"]["status"] == "resolved"
    stored = [json.loads(raw) for raw in shared_store.lrange(keys.transcript("web:upgrade-customer"), 0, -1)]
    assert stored[:2] == OLD_LINES  # the old lines untouched, the new turn appended after them
    assert len(stored) >= 4 and stored[2]["text"] == "几点上班"
    assert shared_store.hget(keys.admin_metrics("2025-11-24"), "turns") == "2"
    assert shared_store.llen(keys.kb_audit()) == 3 and not shared_store.exists(keys.agent_open_ticket("web:waiting-customer"))


async def test_a_migration_cut_off_anywhere_resumes(shared_store: redis.Redis) -> None:
    write_previous_release_data(shared_store)
    shared_store.set("kefu:data-version", 1)
    # a first run died after moving some keys (and after copying one message marker)
    shared_store.rename("kefu:transcript:web:upgrade-customer", keys.transcript("web:upgrade-customer"))
    shared_store.rename("kefu:agents:queue", keys.agent_queue())
    shared_store.copy("kefu:seen:msg:web:old-1", keys.message_claim("web:upgrade-customer", "msg:web", "old-1"))
    client = aioredis.Redis.from_url(REDIS_URL, decode_responses=True)
    try:
        assert await migrate(client, report=lambda _line: None) == DATA_VERSION
        assert await migrate(client, report=lambda _line: None) == DATA_VERSION  # and again: nothing to do
    finally:
        await client.aclose()
    assert old_layout_keys(shared_store) == []
    assert len(shared_store.lrange(keys.transcript("web:upgrade-customer"), 0, -1)) == 2
    assert shared_store.zrange(keys.agent_queue(), 0, -1) == ["t0ld"]
    assert shared_store.hget(keys.agent_ticket("t0ld"), "status") == "queued"
    for conversation, message in (("web:upgrade-customer", "old-1"), ("web:waiting-customer", "old-2")):
        assert str(shared_store.get(keys.message_claim(conversation, "msg:web", message))).startswith("done:")
        assert shared_store.ttl(keys.message_claim(conversation, "msg:web", message)) > 0


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
    assert before.returncode == 0 and f"data version 0; this Kefu: {DATA_VERSION}; 2 migration(s) pending" in before.stdout
    done = kefu(config, "migrate")
    assert done.returncode == 0, done.stderr
    assert "data version 0 → 1: stamp the data version" in done.stdout
    assert shared_store.get("kefu:data-version") == str(DATA_VERSION)
    after = kefu(config, "migrate", "--check")
    assert f"data version {DATA_VERSION}; this Kefu: {DATA_VERSION}; nothing to do" in after.stdout
    again = kefu(config, "migrate")
    assert f"data version {DATA_VERSION}: up to date" in again.stdout


async def test_a_long_migration_keeps_its_lock(shared_store: redis.Redis, monkeypatch: pytest.MonkeyPatch) -> None:
    """A big store takes longer than the lock lasts: it is extended, so no second ``kefu
    migrate`` starts beside the first."""
    monkeypatch.setattr(migrations, "LOCK_SECONDS", 2)
    shared_store.set("kefu:data-version", 1)
    held: list[bool] = []

    async def slow(redis_client: aioredis.Redis) -> None:
        await asyncio.sleep(3)  # past the 2-second lock
        held.append(bool(await redis_client.exists(keys.data_migration_lock())))

    monkeypatch.setattr(migrations, "MIGRATIONS", (*migrations.MIGRATIONS[:1], dataclasses.replace(
        migrations.MIGRATIONS[1], run=slow)))
    client = aioredis.Redis.from_url(REDIS_URL, decode_responses=True)
    try:
        assert await migrate(client, report=lambda _line: None) == DATA_VERSION
    finally:
        await client.aclose()
    assert held == [True] and not shared_store.exists(keys.data_migration_lock())
