"""Versioned knowledge edits: validated, audited (who, when, what), reversible per entry and as a whole."""

from __future__ import annotations

import json

import pytest
import redis.asyncio as aioredis

from bot import keys
from bot.server import status_of
from knowledge.errors import (
    EntryNotFound,
    KnowledgeError,
    KnowledgeLocked,
    ValidationFailed,
    VersionConflict,
    VersionNotFound,
)
from knowledge.repository import KnowledgeRepository
from knowledge.schema import parse_kb
from knowledge.service import KnowledgeService

SEED = """
- id: refund-time
  tags: [refund]
  questions: [退款多久到账, "How long does a refund take?"]
  answer: {zh: 退款1个工作日内发起。, en: Refunds start within 1 business day.}
- id: shipping-fee
  questions: [运费多少]
  answer: 满99包邮。
"""


@pytest.fixture
async def service(redis_client: aioredis.Redis) -> KnowledgeService:
    await KnowledgeRepository(redis_client).replace(parse_kb(SEED))
    return KnowledgeService(redis_client, clock=lambda: 1_790_000_000.0)


async def test_edit_is_versioned_and_audited_with_who_and_what(service: KnowledgeService) -> None:
    start = await service.version()
    change = await service.save({"id": "refund-time", "questions": ["退款多久到账"],
                                 "answer": {"zh": "退款当天发起。", "en": "Refunds start the same day."},
                                 "tags": ["refund"]}, "boss")
    assert change.version == start + 1 == await service.version()
    entry = await service.get("refund-time")
    assert entry is not None and entry.answer["zh"] == "退款当天发起。"
    [record] = await service.history("refund-time")
    assert record["who"] == "boss" and record["at"] == 1_790_000_000.0 and record["action"] == "update"
    assert record["before"]["answer"]["zh"] == "退款1个工作日内发起。"
    assert record["fields"] == ["questions", "answer"]
    # the order of entries is kept; saving the same content again is not a new version
    assert [e.id for e in await service.entries()] == ["refund-time", "shipping-fee"]
    assert (await service.save((await service.require("refund-time")).to_json(), "boss")).records == ()


async def test_invalid_entries_name_the_field_and_change_nothing(service: KnowledgeService) -> None:
    start = await service.version()
    cases: list[tuple[dict[str, object], str]] = [({"id": "x", "questions": ["q"]}, "answer"),
             ({"id": "has space", "questions": ["q"], "answer": "a"}, "id"),
             ({"id": "x", "questions": [], "answer": "a"}, "questions"),
             ({"id": "x", "questions": ["q"], "answer": {"zh": ""}}, "answer"),
             ({"id": "x", "questions": ["q"], "answer": "a", "enabled": "yes"}, "enabled")]
    for raw, field in cases:
        with pytest.raises(ValidationFailed) as failed:
            await service.save(raw, "boss")
        assert failed.value.field == field, str(failed.value)
        assert status_of(failed.value) == 422
    with pytest.raises(ValidationFailed, match="already exists"):
        await service.save({"id": "shipping-fee", "questions": ["q"], "answer": "a"}, "boss", create=True)
    assert await service.version() == start
    assert await service.history() == []


async def test_rollback_one_entry_and_the_whole_knowledge_base(service: KnowledgeService) -> None:
    seeded = await service.version()
    v1 = (await service.save({"id": "shipping-fee", "questions": ["运费多少"], "answer": "满59包邮。"}, "boss")).version
    await service.save({"id": "new-one", "questions": ["发票怎么开"], "answer": "在订单详情申请。"}, "boss")
    await service.delete("refund-time", "wang")
    await service.set_enabled("shipping-fee", False, "boss")

    # one entry back to an earlier version
    back = await service.rollback_entry("shipping-fee", v1, "boss")
    restored = await service.get("shipping-fee")
    assert restored is not None and restored.enabled and restored.answer["zh"] == "满59包邮。"
    assert back.records[0]["action"] == "rollback"

    # the whole knowledge base back to what it was seeded with
    await service.rollback_all(seeded, "boss")
    kb = await service.kb()
    assert [e.id for e in kb.entries] == ["refund-time", "shipping-fee"]  # deleted one back, new one gone
    fee = kb.get("shipping-fee")
    assert fee is not None and fee.answer["zh"] == "满99包邮。"
    # ... and that rollback is itself history that can be rolled back
    history = await service.history()
    assert history[0]["action"] == "rollback" and history[0]["who"] == "boss"
    await service.rollback_all(history[0]["version"] - 1, "boss")
    assert (await service.get("new-one")) is not None and (await service.get("refund-time")) is None


async def test_questions_are_added_once_and_removed(service: KnowledgeService) -> None:
    await service.add_questions("shipping-fee", ["邮费怎么算", "运费多少", "  "], "boss")
    entry = await service.require("shipping-fee")
    assert entry.questions == ("运费多少", "邮费怎么算")
    await service.remove_question("shipping-fee", "邮费怎么算", "boss")
    assert (await service.require("shipping-fee")).questions == ("运费多少",)
    with pytest.raises(ValidationFailed) as failed:  # the last question cannot go
        await service.remove_question("shipping-fee", "运费多少", "boss")
    assert failed.value.field == "questions"


async def test_no_write_gives_an_entry_another_entrys_question(service: KnowledgeService) -> None:
    """Saved or added from the review list, a question two entries share makes both ambiguous:
    refused under the write lock, on the same read of the entries the write plans with."""
    version = await service.version()
    with pytest.raises(ValidationFailed) as failed:
        await service.add_questions("shipping-fee", ["How long does a refund take"], "boss")  # case, "?" aside
    assert failed.value.field == "questions" and str(failed.value) == (
        "question 'How long does a refund take' is also a question of entry 'refund-time'; keep it in one "
        "entry, or the bot cannot tell them apart")
    entry = (await service.require("shipping-fee")).to_json()
    with pytest.raises(ValidationFailed):
        await service.save({**entry, "questions": ["运费多少", " 退款多久到账？"]}, "boss")
    assert await service.version() == version and (await service.require("shipping-fee")).questions == ("运费多少",)
    clash = parse_kb("- id: shipping-fee\n  questions: [运费多少, 退款多久到账]\n  answer: 满99包邮。\n").entries[0]
    assert await service.clashes(clash) == [
        "question '退款多久到账' is also a question of entry 'refund-time'; keep it in one entry, or the bot "
        "cannot tell them apart"]
    assert await service.clashes(await service.require("refund-time")) == []  # its own questions are no clash


async def test_a_change_is_announced_to_every_worker(service: KnowledgeService, redis_client: aioredis.Redis) -> None:
    pubsub = redis_client.pubsub()
    await pubsub.subscribe(keys.kb_changes())
    await pubsub.get_message(timeout=1.0)  # the subscribe confirmation
    change = await service.save({"id": "shipping-fee", "questions": ["运费多少"], "answer": "免运费。"}, "boss")
    message = None
    for _ in range(20):
        message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.5)
        if message is not None:
            break
    await pubsub.aclose()  # type: ignore[no-untyped-call, unused-ignore]
    assert message is not None
    assert json.loads(message["data"]) == {"version": change.version, "changed": ["shipping-fee"]}


# ---------------------------------------------------------------- seeding, lock, domain errors


async def test_seeding_goes_through_the_write_path(redis_client: aioredis.Redis) -> None:
    """An empty store is seeded under the lock, audited (one record, no entry's edit) and announced;
    a store that has a knowledge base keeps it (the second of two starting workers loads the first's)."""
    service = KnowledgeService(redis_client, clock=lambda: 1_790_000_000.0)
    pubsub = redis_client.pubsub()
    await pubsub.subscribe(keys.kb_changes())
    await pubsub.get_message(timeout=1.0)
    kb, version = await service.seed(parse_kb(SEED), note="seed.yaml")
    assert version == 1 == await service.version() and kb == await service.kb()
    [record] = await service.history()
    assert record == {"version": 1, "at": 1_790_000_000.0, "who": "kefu", "action": "seed", "entry_id": "",
                      "before": None, "after": None, "note": "seed.yaml", "pos": None, "fields": []}
    assert await service.history("refund-time") == []  # an entry's history starts with its first edit
    message = None
    for _ in range(20):
        message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.5)
        if message is not None:
            break
    await pubsub.aclose()  # type: ignore[no-untyped-call, unused-ignore]
    assert message is not None and json.loads(message["data"])["version"] == 1

    other = parse_kb("- id: other\n  questions: [q]\n  answer: a\n")
    again, same = await service.seed(other)
    assert same == 1 and again == kb and len(await service.history()) == 1

    # the seed is no entry's edit: rolling back to before it is older than the kept history
    await service.save({"id": "shipping-fee", "questions": ["运费多少"], "answer": "免运费。"}, "boss")
    with pytest.raises(VersionConflict):
        await service.rollback_all(0, "boss")
    await service.rollback_all(1, "boss")
    fee = await service.get("shipping-fee")
    assert fee is not None and fee.answer["zh"] == "满99包邮。"


async def test_an_empty_seed_file_is_stored_as_an_empty_knowledge_base(redis_client: aioredis.Redis) -> None:
    service = KnowledgeService(redis_client)
    kb, version = await service.seed(parse_kb(""))
    assert len(kb) == 0 and version == 1
    assert await KnowledgeRepository(redis_client).load() == kb  # not None: never re-seeded


async def test_a_held_write_lock_is_a_domain_error(redis_client: aioredis.Redis, service: KnowledgeService,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    import knowledge.service

    monkeypatch.setattr(knowledge.service, "LOCK_SECONDS", 0.2)
    holder = redis_client.lock(keys.kb_write_lock(), timeout=5)
    assert await holder.acquire()
    try:
        with pytest.raises(KnowledgeLocked):
            await service.delete("shipping-fee", "boss")
    finally:
        await holder.release()
    assert (await service.delete("shipping-fee", "boss")).records


async def test_missing_things_are_domain_errors_with_their_http_status(service: KnowledgeService) -> None:
    cases = [(service.require("nope"), EntryNotFound, 404),
             (service.save({"id": "nope", "questions": ["q"], "answer": "a"}, "boss", create=False), EntryNotFound, 404),
             (service.rollback_entry("nope", 1, "boss"), EntryNotFound, 404),
             (service.rollback_all(99, "boss"), VersionNotFound, 404)]
    for call, kind, status in cases:
        with pytest.raises(kind) as caught:
            await call
        assert status_of(caught.value) == status and isinstance(caught.value, KnowledgeError)
    assert status_of(VersionConflict("x")) == 409 and status_of(KnowledgeLocked("x")) == 409
    assert status_of(ValidationFailed("x")) == 422 and status_of(KnowledgeError("x")) == 500


async def test_an_apply_is_one_transaction(redis_client: aioredis.Redis, service: KnowledgeService) -> None:
    """Entries, version and audit change together: the audit record carries the version it made."""
    change = await service.apply({"shipping-fee": None, "new": parse_kb("- id: new\n  questions: [q]\n  answer: a\n")
                                  .entries[0]}, "boss", "import")
    raw = [json.loads(r) for r in await redis_client.lrange(keys.kb_audit(), 0, -1)]
    assert [r["version"] for r in raw] == [change.version, change.version] == [await service.version()] * 2
    assert [e.id for e in await service.entries()] == ["refund-time", "new"]
