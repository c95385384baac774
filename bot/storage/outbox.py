"""Held replies and the customer-service window of the platforms that ration replies (WeChat, WeCom).

Per customer: when they last wrote, how many replies went out since, and why sending stopped
(fields of the ``customer:<channel>:<user>`` hash); per conversation, the list of replies
waiting for the window to reopen; per customer, the lock that keeps sends in order.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import redis.asyncio as aioredis

from bot import keys
from bot.storage.scripts import Lua
from bot.types import Reply, Suggestion

# KEYS: the customer hash.  ARGV: now, window seconds, quota.  Takes one send of the quota, or
# says why not ('window_closed', 'quota_used'), in one step so two workers never overspend it.
_RESERVE = """
local last = tonumber(redis.call('HGET', KEYS[1], 'window_last_in') or '0')
if tonumber(ARGV[1]) - last > tonumber(ARGV[2]) then return 'window_closed' end
local sent = tonumber(redis.call('HGET', KEYS[1], 'window_sent') or '0')
if sent >= tonumber(ARGV[3]) then return 'quota_used' end
redis.call('HINCRBY', KEYS[1], 'window_sent', 1)
return 'ok'
"""


class DeliveryWindows:
    """One channel's windows and held replies (JSON {text, suggestions, queued_at}, oldest first)."""

    def __init__(self, redis: aioredis.Redis, channel: str) -> None:
        self.redis = redis
        self.channel = channel
        self._reserve = Lua(redis, _RESERVE)

    def _customer(self, user_id: str) -> str:
        return keys.customer(self.channel, user_id)

    async def opened(self, user_id: str, now: float) -> None:
        """The customer wrote: the window reopens with a fresh quota."""
        await self.redis.hset(self._customer(user_id), mapping={
            "window_last_in": str(now), "window_sent": "0", "window_blocked": ""})

    async def reserve(self, user_id: str, now: float, window_seconds: float, quota: int) -> str:
        """'ok' (one send taken from the quota), 'window_closed' or 'quota_used'."""
        return str(await self._reserve([self._customer(user_id)], [str(now), str(window_seconds), str(quota)]))

    async def unreserve(self, user_id: str) -> None:
        """A reserved send failed for a passing reason: it does not count."""
        await self.redis.hincrby(self._customer(user_id), "window_sent", -1)

    async def shut(self, user_id: str, reason: str, quota: int) -> None:
        """The platform said the window is shut (``reason``): remember it until the customer writes."""
        fields: dict[Any, Any] = {"window_blocked": reason}
        if reason == "quota_used":
            fields["window_sent"] = str(quota)
        elif reason == "window_closed":
            fields["window_last_in"] = "0"
        await self.redis.hset(self._customer(user_id), mapping=fields)

    async def hold(self, conversation_id: str, user_id: str, replies: Sequence[Reply], reason: str, now: float,
                   front: bool = False) -> int:
        """Queue ``replies`` (at the front: before what already waits) and say why; returns how many."""
        items = [json.dumps({"text": r.text, "suggestions": [[s.label, s.payload] for s in r.suggestions],
                             "queued_at": now}, ensure_ascii=False) for r in replies]
        if not items:
            return 0
        if front:
            await self.redis.lpush(keys.outbox(conversation_id), *reversed(items))
        else:
            await self.redis.rpush(keys.outbox(conversation_id), *items)
        await self.redis.hset(self._customer(user_id), "window_blocked", reason)
        return len(items)

    async def take(self, conversation_id: str) -> list[Reply]:
        """Every held reply, removed from the queue in the same step."""
        key = keys.outbox(conversation_id)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.lrange(key, 0, -1)
            pipe.delete(key)
            raw, _ = await pipe.execute()
        replies = []
        for item in raw:
            data = json.loads(item)
            replies.append(Reply(data["text"], tuple(Suggestion(str(a), str(b)) for a, b in data["suggestions"])))
        return replies

    async def held(self, conversation_id: str) -> int:
        return int(await self.redis.llen(keys.outbox(conversation_id)))

    async def window(self, user_id: str) -> tuple[float, int, str]:
        """(when the customer last wrote (0: never or shut), sends since, why sending stopped)."""
        data = await self.redis.hgetall(self._customer(user_id))
        return (float(data.get("window_last_in") or 0), int(data.get("window_sent") or 0),
                str(data.get("window_blocked") or ""))

    def lock(self, user_id: str) -> Any:
        """The lock that keeps one customer's sends (quota, queue order) in order across workers."""
        return self.redis.lock(keys.delivery_lock(self.channel, user_id), timeout=60, blocking_timeout=60)
