"""Small per-channel values the platform adapters share across workers.

Access tokens (and the lock under which one worker refreshes them), WeChat's memory of how a
message was answered (so a platform retry repeats it), WeCom's feed cursor, its lock and
per-message failure counts, the account a WeCom customer wrote to, and Telegram's long
button payloads.  Each is a ``channel:<name>:...`` key (:func:`bot.keys.channel_state`) or a
field of the ``customer:<channel>:<user>`` hash.
"""

from __future__ import annotations

import json
from typing import Any

import redis.asyncio as aioredis

from bot import keys

SYNC_FAILURES_SECONDS = 86_400  # a poison message's failure count is kept this long


class ChannelState:
    """One channel's shared values."""

    def __init__(self, redis: aioredis.Redis, channel: str) -> None:
        self.redis = redis
        self.channel = channel

    # --- access tokens (WeChat, WeCom) -----------------------------------------------------------

    async def access_token(self) -> tuple[str, float] | None:
        """The shared token and when it expires (clock seconds), if one is stored."""
        raw = await self.redis.get(keys.access_token(self.channel))
        if not raw:
            return None
        data = json.loads(raw)
        return str(data["token"]), float(data["expires"])

    async def save_access_token(self, token: str, expires: float, ttl_seconds: int) -> None:
        await self.redis.set(keys.access_token(self.channel), json.dumps({"token": token, "expires": expires}),
                             ex=ttl_seconds)

    async def drop_access_token(self) -> None:
        await self.redis.delete(keys.access_token(self.channel))

    def access_token_lock(self, seconds: float) -> Any:
        """Held while one worker fetches a new token (acquire with ``blocking=False``)."""
        return self.redis.lock(keys.access_token_lock(self.channel), timeout=seconds)

    # --- how a message was answered (WeChat's retries) ------------------------------------------

    async def remember_reply(self, message_id: str, delivery: dict[str, str], seconds: int) -> None:
        await self.redis.set(keys.turn_reply(self.channel, message_id), json.dumps(delivery, ensure_ascii=False),
                             ex=seconds)

    async def remembered_reply(self, message_id: str) -> dict[str, Any] | None:
        raw = await self.redis.get(keys.turn_reply(self.channel, message_id))
        return dict(json.loads(raw)) if raw else None

    # --- a pulled feed (WeCom kf/sync_msg) -------------------------------------------------------

    def sync_lock(self, account: str, seconds: float) -> Any:
        return self.redis.lock(keys.sync_lock(self.channel, account), timeout=seconds, blocking_timeout=seconds)

    async def sync_cursor(self, account: str) -> str:
        return str(await self.redis.get(keys.sync_cursor(self.channel, account)) or "")

    async def save_sync_cursor(self, account: str, cursor: str) -> None:
        await self.redis.set(keys.sync_cursor(self.channel, account), cursor)

    async def count_failure(self, message_id: str) -> int:
        """One more failed attempt at a pulled message; returns how many there were."""
        key = keys.sync_failures(self.channel, message_id)
        attempts = int(await self.redis.incr(key))
        await self.redis.expire(key, SYNC_FAILURES_SECONDS)
        return attempts

    async def customer_field(self, user_id: str, name: str) -> str:
        return str(await self.redis.hget(keys.customer(self.channel, user_id), name) or "")

    async def set_customer_field(self, user_id: str, name: str, value: str) -> None:
        await self.redis.hset(keys.customer(self.channel, user_id), name, value)

    # --- long button payloads (Telegram's 64-byte callback data) ---------------------------------

    async def save_payload(self, short: str, payload: str, seconds: int) -> None:
        await self.redis.set(keys.channel_state(self.channel, f"callback:{short}"), payload, ex=seconds)

    async def payload(self, short: str) -> str | None:
        value = await self.redis.get(keys.channel_state(self.channel, f"callback:{short}"))
        return None if value is None else str(value)
