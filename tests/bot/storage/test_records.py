"""The dashboard's records: a turn record's encoding, the bounds, thumbs and the reads."""

from __future__ import annotations

import json

import pytest
import redis.asyncio as aioredis

from bot import keys
from bot.storage import records as module
from bot.storage.records import AdminRecords, TurnRecord, day_of
from bot.storage.scripts import Batch

AT = 1_700_000_000.0


async def test_a_turn_record_is_one_script_call(redis_client: aioredis.Redis) -> None:
    records = AdminRecords(redis_client)
    batch = Batch(redis_client)
    records.queue(batch, TurnRecord(AT, {"turns": 1, "handoff:complaint": 1}, {"text": "问", "language": "zh", "at": AT},
                                    {"text": "问", "reason": "handoff:complaint"}, {"text": "早先", "reason": "disputed"}))
    records.queue(batch, TurnRecord(AT, {"turns": 1}))
    assert len(batch.calls) == 2 and await batch.execute() == [1, 1]
    assert await redis_client.hgetall(keys.admin_metrics(day_of(AT))) == {"turns": "2", "handoff:complaint": "1"}
    assert 0 < await redis_client.ttl(keys.admin_metrics(day_of(AT))) <= module.METRICS_TTL
    assert [json.loads(r)["text"] for r in await redis_client.lrange(keys.admin_unanswered(), 0, -1)] == ["问", "早先"]
    assert await records.daily_counters([day_of(AT), "1999-01-01"]) == [{"turns": 2, "handoff:complaint": 1}, {}]


async def test_lists_stay_bounded(redis_client: aioredis.Redis, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(module, "QUESTIONS_MAX", 3)
    monkeypatch.setattr(module, "UNANSWERED_MAX", 2)
    records = AdminRecords(redis_client)
    batch = Batch(redis_client)
    for n in range(5):
        records.queue(batch, TurnRecord(AT, {}, {"text": f"q{n}", "at": AT}, {"text": f"u{n}", "at": AT}))
    await batch.execute()
    assert await redis_client.llen(keys.admin_questions()) == 3  # the newest are kept
    assert await records.recent_questions(10) == ["q4", "q3", "q2", "u4", "u3"]


async def test_thumbs_and_resolving_unanswered_questions(redis_client: aioredis.Redis) -> None:
    records = AdminRecords(redis_client)
    await records.thumbs_down(AT, {"text": " 运费 ", "reason": "thumbs_down", "at": AT})
    await records.thumbs_up(AT)
    assert await redis_client.hgetall(keys.admin_metrics(day_of(AT))) == {
        "unanswered": "1", "thumbs_down": "1", "thumbs_up": "1"}
    assert [r["reason"] for r in await records.unanswered()] == ["thumbs_down"]
    assert await records.unanswered(since=AT + 1) == []
    assert await records.resolve(["运费"]) == 1
    assert await records.unanswered() == []
