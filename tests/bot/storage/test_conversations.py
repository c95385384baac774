"""The conversations repository: a turn's writes, what observers record with them, and its cost."""

from __future__ import annotations

import itertools

import redis.asyncio as aioredis

from bot import keys
from bot.app import compose
from bot.config import Config, StoreConfig
from bot.storage.conversations import Store, TurnStart
from bot.storage.records import TurnRecord, day_of
from bot.types import InboundMessage
from tests.bot.storage.conftest import CountingConnection

_ids = itertools.count()


async def test_end_turn_applies_the_records_of_the_turn(redis_client: aioredis.Redis) -> None:
    store = Store(redis_client, StoreConfig())
    start = await store.begin_turn("web:a", "msg:web", "m1")
    assert isinstance(start, TurnStart)
    record = TurnRecord(1_700_000_000.0, {"turns": 1, "entry:returns": 1},
                        question={"text": "怎么退货", "language": "zh", "at": 1.0},
                        unanswered={"text": "?", "reason": "clarified"})
    await store.end_turn("web:a", start, "msg:web", "m1", done=True, records=[record])
    assert await redis_client.hgetall(keys.admin_metrics(day_of(record.at))) == {"turns": "1", "entry:returns": "1"}
    assert await redis_client.lrange(keys.admin_questions(), 0, -1) == [
        '{"text": "怎么退货", "language": "zh", "at": 1.0}']
    assert await redis_client.llen(keys.admin_unanswered()) == 1
    assert not await redis_client.exists(keys.lock("web:a"))
    assert str(await redis_client.get(keys.message_claim("web:a", "msg:web", "m1"))).startswith("done:")


async def test_a_failing_record_never_fails_the_turn(redis_client: aioredis.Redis) -> None:
    store = Store(redis_client, StoreConfig())
    record = TurnRecord(1_700_000_000.0, {"turns": 1})
    await redis_client.set(keys.admin_metrics(day_of(record.at)), "not a hash")  # HINCRBY fails
    start = await store.begin_turn("web:b", "msg:web", "m2")
    assert isinstance(start, TurnStart)
    await store.end_turn("web:b", start, "msg:web", "m2", done=True, records=[record])
    assert not await redis_client.exists(keys.lock("web:b"))


async def test_a_recorded_turn_costs_four_round_trips(config: Config, counted: aioredis.Redis) -> None:
    """Claim+lock+load, the rate counter, save, unlock+remember+record (docs/benchmarks.md "Load")."""
    runtime = compose(config, redis=counted).runtime  # with the admin console's recorder, as served
    await runtime.load()
    for _ in range(2):  # the second time every script is known to Redis
        before = CountingConnection.sent
        await runtime.engine.handle(InboundMessage("web", "rt", "rt", "怎么退货", f"m{next(_ids)}"))
    assert CountingConnection.sent - before == 4
    assert int((await counted.hgetall(keys.admin_metrics(day_of(runtime.engine.clock()))))["turns"]) == 2


async def test_a_record_that_cannot_be_encoded_is_dropped_not_the_turn(redis_client: aioredis.Redis) -> None:
    store = Store(redis_client, StoreConfig())
    start = await store.begin_turn("web:c", "msg:web", "m3")
    assert isinstance(start, TurnStart)
    await store.end_turn("web:c", start, "msg:web", "m3", done=True,
                         records=[TurnRecord(1.0, {"turns": 1}, question={"text": object()})])
    assert not await redis_client.exists(keys.lock("web:c"), keys.admin_questions())
