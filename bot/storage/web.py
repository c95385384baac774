"""The web chat's own state: visitor files and names, "agent is typing", the visitor-token
secret and the new-session admission counters."""

from __future__ import annotations

import base64
import secrets

import redis.asyncio as aioredis

from bot import keys
from bot.errors import StoreUnavailable
from bot.storage.client import REDIS_ERRORS
from bot.storage.scripts import Lua

# KEYS: the session's "already admitted" mark, this address's and everyone's new-session
# counters (one hash slot, {web-admission}).  ARGV: how long the mark lasts, both limits.  A
# session admitted before (when its visitor token was issued, or by a concurrent first message)
# passes; a new one is counted and marked in the same step, or refused (1) when a limit is used up.
_ADMIT = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
if tonumber(redis.call('GET', KEYS[2]) or '0') >= tonumber(ARGV[2]) then return 1 end
if tonumber(redis.call('GET', KEYS[3]) or '0') >= tonumber(ARGV[3]) then return 1 end
for i = 2, 3 do redis.call('INCR', KEYS[i]); redis.call('EXPIRE', KEYS[i], 120) end
redis.call('SET', KEYS[1], '1', 'EX', ARGV[1])
return 0
"""


class WebSessions:
    """Typed operations on the web channel's keys; every Redis failure is :class:`StoreUnavailable`."""

    def __init__(self, redis: aioredis.Redis, ttl_seconds: int) -> None:
        self.redis = redis
        self.ttl_seconds = ttl_seconds  # as long as a transcript is kept
        self._admit = Lua(redis, _ADMIT)

    async def save_attachment(self, attachment_id: str, owner: str, content_type: str, name: str,
                              data: bytes) -> None:
        """Keep a visitor's file for the agent, as long as a transcript is kept."""
        try:
            await self.redis.hset(keys.web_attachment(attachment_id), mapping={
                "owner": owner, "type": content_type, "name": name, "size": len(data),
                "data": base64.b64encode(data).decode()})
            await self.redis.expire(keys.web_attachment(attachment_id), self.ttl_seconds)
        except REDIS_ERRORS as exc:
            raise StoreUnavailable(str(exc)) from exc

    async def load_attachment(self, attachment_id: str) -> tuple[str, str, str, bytes] | None:
        """(owner, content type, name, bytes) of a kept file, or None."""
        try:
            found = await self.redis.hgetall(keys.web_attachment(attachment_id))
        except REDIS_ERRORS as exc:
            raise StoreUnavailable(str(exc)) from exc
        if not found:
            return None
        return str(found["owner"]), str(found["type"]), str(found["name"]), base64.b64decode(found["data"])

    async def set_visitor_name(self, visitor_id: str, name: str) -> None:
        try:
            await self.redis.set(keys.web_visitor_name(visitor_id), name, ex=self.ttl_seconds)
        except REDIS_ERRORS as exc:
            raise StoreUnavailable(str(exc)) from exc

    async def visitor_name(self, visitor_id: str) -> str:
        """The name the website vouched for ("" if none)."""
        try:
            return str(await self.redis.get(keys.web_visitor_name(visitor_id)) or "")
        except REDIS_ERRORS as exc:
            raise StoreUnavailable(str(exc)) from exc

    async def set_typing(self, conversation_id: str, seconds: float) -> None:
        """Show "the agent is typing" to the customer for ``seconds`` (it lapses by itself)."""
        try:
            await self.redis.set(keys.web_typing(conversation_id), "1", px=max(1, int(seconds * 1000)))
        except REDIS_ERRORS as exc:
            raise StoreUnavailable(str(exc)) from exc

    async def visitor_secret(self) -> str:
        """The secret signing visitor tokens, made once by whichever worker asks first."""
        try:
            await self.redis.set(keys.web_visitor_secret(), secrets.token_urlsafe(32), nx=True)
            return str(await self.redis.get(keys.web_visitor_secret()))
        except REDIS_ERRORS as exc:
            raise StoreUnavailable(str(exc)) from exc

    async def admit(self, conversation_id: str, address: str, window: int, per_address: int, overall: int,
                    admitted_seconds: int) -> bool:
        """Count a new chat of ``address`` in minute ``window`` unless it is known or already
        counted; False when a limit (per address, or everyone together) is used up.

        Two steps, because the conversation lives in its own hash slot and the counters in a
        shared one: a stored conversation passes (the common case: one round trip); otherwise
        the script counts the session and marks it admitted at once, so two first messages at
        the same moment, or a retry, count it once.  The first step only reads: a crash between
        the steps leaves nothing half done."""
        try:
            if await self.redis.exists(keys.conversation(conversation_id)):
                return True
            refused = await self._admit(
                [keys.web_session_admitted(conversation_id), keys.new_web_sessions(address, window),
                 keys.new_web_sessions("all", window)],
                [admitted_seconds, per_address, overall])
        except REDIS_ERRORS as exc:  # 503 + retry, like the turn itself would
            raise StoreUnavailable(str(exc)) from exc
        return not int(refused)
