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

# KEYS: the conversation, this address's and everyone's new-session counters, the session's
# "already admitted" mark.  ARGV: both limits, how long the mark lasts.  A known session (or one
# admitted when its visitor token was issued) passes; a new one is counted and marked, or
# refused (1) when a limit is used up.
_ADMIT = """
if redis.call('EXISTS', KEYS[1]) == 1 or redis.call('EXISTS', KEYS[4]) == 1 then return 0 end
if tonumber(redis.call('GET', KEYS[2]) or '0') >= tonumber(ARGV[1]) then return 1 end
if tonumber(redis.call('GET', KEYS[3]) or '0') >= tonumber(ARGV[2]) then return 1 end
for i = 2, 3 do redis.call('INCR', KEYS[i]); redis.call('EXPIRE', KEYS[i], 120) end
redis.call('SET', KEYS[4], '1', 'EX', ARGV[3])
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
        counted; False when a limit (per address, or everyone together) is used up."""
        try:
            refused = await self._admit(
                [keys.conversation(conversation_id), keys.new_web_sessions(address, window),
                 keys.new_web_sessions("all", window), keys.web_session_admitted(conversation_id)],
                [per_address, overall, admitted_seconds])
        except REDIS_ERRORS as exc:  # 503 + retry, like the turn itself would
            raise StoreUnavailable(str(exc)) from exc
        return not int(refused)
