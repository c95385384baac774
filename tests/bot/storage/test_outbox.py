"""Delivery windows and held replies."""

from __future__ import annotations

import redis.asyncio as aioredis

from bot.storage.outbox import DeliveryWindows
from bot.types import Reply, Suggestion


async def test_the_window_and_its_quota(redis_client: aioredis.Redis) -> None:
    windows = DeliveryWindows(redis_client, "wechat")
    assert await windows.reserve("u", 100.0, 50, 2) == "window_closed"  # never wrote
    await windows.opened("u", 100.0)
    assert [await windows.reserve("u", 120.0, 50, 2) for _ in range(3)] == ["ok", "ok", "quota_used"]
    await windows.unreserve("u")
    assert await windows.reserve("u", 120.0, 50, 2) == "ok"
    assert await windows.reserve("u", 151.0, 50, 2) == "window_closed"
    await windows.shut("u", "window_closed", 2)
    assert await windows.window("u") == (0.0, 2, "window_closed")


async def test_held_replies_keep_their_order(redis_client: aioredis.Redis) -> None:
    windows = DeliveryWindows(redis_client, "wechat")
    assert await windows.hold("wechat:u", "u", [Reply("b"), Reply("c")], "quota_used", 1.0) == 2
    assert await windows.hold("wechat:u", "u", [Reply("a", (Suggestion("是", "yes"),))], "quota_used", 2.0,
                              front=True) == 1
    assert await windows.hold("wechat:u", "u", [], "quota_used", 3.0) == 0
    assert await windows.held("wechat:u") == 3
    assert await windows.take("wechat:u") == [Reply("a", (Suggestion("是", "yes"),)), Reply("b"), Reply("c")]
    assert await windows.held("wechat:u") == 0 and (await windows.window("u"))[2] == "quota_used"
    async with windows.lock("u"):
        assert not await windows.lock("u").acquire(blocking=False)
