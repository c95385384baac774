"""Live everywhere: a saved change reaches another worker's runtime within seconds, without a
restart, and a one-entry edit re-indexes only that entry."""

from __future__ import annotations

import asyncio
import time

import pytest
import redis.asyncio as aioredis

import bot.runtime
from bot.admin.live import KnowledgeSync
from bot.config import Config
from bot.runtime import Runtime
from knowledge.service import KnowledgeService
from tests.bot.admin.conftest import Admin


async def _answer(runtime: Runtime, text: str) -> str:
    from bot.admin.unanswered import probe

    decision = runtime.knowledge.layer.decide(text, probe(text))
    entry = runtime.knowledge.kb.get(decision.entry_id or "")
    return entry.answer_in("zh") if entry else ""


async def test_another_worker_answers_the_edit_within_seconds(admin: Admin, admin_config: Config,
                                                              redis_client: aioredis.Redis) -> None:
    other = await Runtime.start(admin_config, redis=redis_client)  # a second worker on the same store
    sync = KnowledgeSync(other, poll_seconds=30)  # only the announcement can make this fast
    await sync.start()
    try:
        await asyncio.sleep(0.2)
        service = KnowledgeService(redis_client)
        entry = (await service.require("refund-time")).to_json()
        change = await service.save({**entry, "answer": {"zh": "退款当天到账。"}}, "boss")
        started = time.monotonic()
        while other.knowledge.version != change.version:
            assert time.monotonic() - started < 5, "the other worker did not reload"
            await asyncio.sleep(0.05)
        assert await _answer(other, "退款多久到账") == "退款当天到账。"
    finally:
        await sync.stop()


async def test_version_poll_catches_a_missed_announcement(admin: Admin, admin_config: Config,
                                                          redis_client: aioredis.Redis) -> None:
    other = await Runtime.start(admin_config, redis=redis_client)
    service = KnowledgeService(redis_client)
    entry = (await service.require("refund-time")).to_json()
    change = await service.save({**entry, "answer": {"zh": "退款两天内到账。"}}, "boss")  # before anyone listens
    sync = KnowledgeSync(other, poll_seconds=0.2)
    await sync.start()
    try:
        started = time.monotonic()
        while other.knowledge.version != change.version:
            assert time.monotonic() - started < 5
            await asyncio.sleep(0.05)
    finally:
        await sync.stop()
    assert await _answer(other, "退款多久到账") == "退款两天内到账。"


async def test_one_entry_edit_is_incremental(admin: Admin, redis_client: aioredis.Redis,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    def no_full_rebuild(*args: object, **kwargs: object) -> None:
        raise AssertionError("a one-entry edit must not rebuild the whole index")

    monkeypatch.setattr(bot.runtime, "build_live_layer", no_full_rebuild)
    service = KnowledgeService(redis_client)
    old = admin.runtime.knowledge.retriever
    await service.save({"id": "gift-card", "questions": ["礼品卡怎么用"], "answer": "在结算页选择礼品卡。"}, "boss")
    await service.delete("exchange", "boss")
    assert await admin.runtime.reload_knowledge()
    live = admin.runtime.knowledge
    assert live.retriever is not old and old is not None
    assert "gift-card" in live.retriever.labels and "exchange" not in live.retriever.labels  # type: ignore[union-attr]
    assert "exchange" in old.labels and "gift-card" not in old.labels  # in-flight turns kept a consistent index
    assert await _answer(admin.runtime, "礼品卡怎么用") == "在结算页选择礼品卡。"
