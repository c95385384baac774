"""Versioned knowledge edits: validated, audited (who, when, what), reversible per entry and as a whole."""

from __future__ import annotations

import json

import pytest
import redis.asyncio as aioredis

from bot import keys
from bot.server import status_of
from knowledge.errors import ValidationFailed
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
    await pubsub.aclose()  # type: ignore[no-untyped-call]
    assert message is not None
    assert json.loads(message["data"]) == {"version": change.version, "changed": ["shipping-fee"]}
