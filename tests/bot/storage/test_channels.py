"""Per-channel shared values."""

from __future__ import annotations

import redis.asyncio as aioredis

from bot import keys
from bot.storage.channels import SYNC_FAILURES_SECONDS, ChannelState


async def test_access_tokens_and_reply_memory(redis_client: aioredis.Redis) -> None:
    state = ChannelState(redis_client, "wechat")
    assert await state.access_token() is None
    await state.save_access_token("t1", 99.5, 60)
    assert await state.access_token() == ("t1", 99.5)
    assert 0 < await redis_client.ttl(keys.access_token("wechat")) <= 60
    await state.drop_access_token()
    assert await state.access_token() is None
    assert await state.access_token_lock(5).acquire(blocking=False)
    assert not await state.access_token_lock(5).acquire(blocking=False)
    await state.remember_reply("m1", {"mode": "passive", "text": "你好"}, 30)
    assert await state.remembered_reply("m1") == {"mode": "passive", "text": "你好"}
    assert await state.remembered_reply("m2") is None


async def test_feed_cursor_failures_customer_fields_and_payloads(redis_client: aioredis.Redis) -> None:
    state = ChannelState(redis_client, "wecom")
    assert await state.sync_cursor("kf1") == ""
    await state.save_sync_cursor("kf1", "c-2")
    assert await state.sync_cursor("kf1") == "c-2"
    assert [await state.count_failure("m") for _ in range(2)] == [1, 2]
    assert 0 < await redis_client.ttl(keys.sync_failures("wecom", "m")) <= SYNC_FAILURES_SECONDS
    await state.set_customer_field("u", "kf_open_kfid", "kf2")
    assert await state.customer_field("u", "kf_open_kfid") == "kf2" and await state.customer_field("v", "x") == ""
    telegram = ChannelState(redis_client, "telegram")
    await telegram.save_payload("abc", "choice:很长的载荷", 60)
    assert await telegram.payload("abc") == "choice:很长的载荷" and await telegram.payload("zzz") is None
