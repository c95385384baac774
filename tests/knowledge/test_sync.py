"""The cross-worker sync on its own (no runtime): an announcement wakes the reload at once, the
poll catches what pub/sub missed, the served version is reported and withdrawn on stop."""

from __future__ import annotations

import asyncio
import itertools
import json
import time

import redis.asyncio as aioredis

from bot import keys
from knowledge.sync import KnowledgeSync, served_versions


async def test_an_announcement_reloads_at_once_and_stop_withdraws_the_report(redis_client: aioredis.Redis) -> None:
    reloads: list[float] = []
    version = [7]

    async def reload() -> bool:
        reloads.append(time.monotonic())
        return True

    sync = KnowledgeSync(redis_client, reload, lambda: version[0], poll_seconds=30)
    await sync.start()
    try:
        started = time.monotonic()
        while not reloads:  # the (re)subscription itself wakes one reload: what was missed meanwhile
            assert time.monotonic() - started < 5
            await asyncio.sleep(0.02)
        assert [w["version"] for w in await served_versions(redis_client, time.time())] == [7]
        version[0] = 8
        await redis_client.publish(keys.kb_changes(), '{"version": 8, "changed": ["x"]}')
        while len(reloads) < 2:
            assert time.monotonic() - started < 5, "the announcement did not wake the reload"
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.1)
        assert [w["version"] for w in await served_versions(redis_client, time.time())] == [8]
    finally:
        await sync.stop()
    assert await served_versions(redis_client, time.time()) == []


async def test_a_failing_reload_backs_off_and_an_announcement_retries_at_once(redis_client: aioredis.Redis) -> None:
    """The loop lives through every failure, waits longer after each, and still reports what it serves."""
    calls: list[float] = []

    async def reload() -> bool:
        calls.append(time.monotonic())
        raise RuntimeError("index build failed")

    sync = KnowledgeSync(redis_client, reload, lambda: 3, poll_seconds=0.02)
    await sync.start()
    try:
        started = time.monotonic()
        while len(calls) < 5:
            assert time.monotonic() - started < 10
            await asyncio.sleep(0.01)
        gaps = [b - a for a, b in itertools.pairwise(calls)]
        assert gaps[3] >= 4 * 0.02 * 1.5 and gaps[3] > gaps[0], gaps  # 0.04, 0.08, 0.16, 0.32 s ...
        assert sync.failures >= 5 and sync.retry_after() > 0.5
        assert [w["version"] for w in await served_versions(redis_client, time.time())] == [3]  # still reported
        count = len(calls)
        await redis_client.publish(keys.kb_changes(), '{"version": 4, "changed": ["x"]}')
        while len(calls) == count:
            assert time.monotonic() - started < 10, "an announcement did not retry at once"
            await asyncio.sleep(0.01)
    finally:
        await sync.stop()


async def test_the_reload_reports_how_late_the_event_loop_ran(redis_client: aioredis.Redis) -> None:
    block = [0.0]

    async def reload() -> bool:
        await asyncio.sleep(0.03)
        time.sleep(block[0])  # CPU work done on the loop instead of in a thread
        await asyncio.sleep(0.01)
        return True

    sync = KnowledgeSync(redis_client, reload, lambda: 1, poll_seconds=30)
    await sync._probed_reload()
    assert sync.lag_ms < 50 and sync.reload_ms >= 40
    block[0] = 0.12
    await sync._probed_reload()
    assert sync.lag_ms >= 100
    await sync.report()
    [served] = (await redis_client.hgetall(keys.kb_served())).values()
    assert json.loads(served)["lag_ms"] >= 100
