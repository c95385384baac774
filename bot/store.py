"""The store: all durable state, over ``redis.asyncio``.

``redis://`` URLs use a real Redis shared by every worker; ``memory://`` runs the *same code*
against an in-process fakeredis server, so the embedded default behaves like production
except that it is not durable and not shared between processes.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import LockError
from redis.exceptions import TimeoutError as RedisTimeoutError

from bot import keys
from bot.config import StoreConfig
from bot.errors import ConfigError, StoreUnavailable
from bot.types import (
    Candidate,
    Conversation,
    ConversationState,
    CustomerProfile,
    HandoffRequest,
    TranscriptLine,
)

log = logging.getLogger(__name__)

REDIS_ERRORS = (RedisConnectionError, RedisTimeoutError, OSError)


def connect(url: str) -> aioredis.Redis:
    """A client for ``url``; ``memory://`` gives an in-process fakeredis server."""
    if url.startswith("memory://"):
        import fakeredis

        return fakeredis.FakeAsyncRedis(decode_responses=True)
    if not url.startswith(("redis://", "rediss://", "unix://")):
        raise ConfigError(f"store.url must start with memory://, redis://, rediss:// or unix://, got {url!r}")
    return aioredis.Redis.from_url(url, decode_responses=True, socket_timeout=5, socket_connect_timeout=5)


def _conversation_to_json(conv: Conversation) -> str:
    handoff = None
    if conv.handoff is not None:
        handoff = {
            "reason": conv.handoff.reason,
            "detail": conv.handoff.detail,
            "candidates": [[c.entry_id, c.score, c.question] for c in conv.handoff.candidates],
        }
    return json.dumps({
        "id": conv.id, "channel": conv.channel, "user_id": conv.user_id, "chat_id": conv.chat_id,
        "state": conv.state.value, "language": conv.language, "profile": conv.profile.to_json(),
        "pending_suggestions": list(conv.pending_suggestions), "failures": conv.failures,
        "handoff": handoff, "updated_at": conv.updated_at,
        "pending_action": conv.pending_action, "slots": conv.slots,
    }, ensure_ascii=False, default=str)


def _conversation_from_json(raw: str, transcript: tuple[TranscriptLine, ...]) -> Conversation:
    data: dict[str, Any] = json.loads(raw)
    handoff = None
    if data.get("handoff"):
        h = data["handoff"]
        handoff = HandoffRequest(h["reason"], h["detail"],
                                 tuple(Candidate(str(c[0]), float(c[1]), str(c[2])) for c in h["candidates"]))
    return Conversation(
        id=data["id"], channel=data["channel"], user_id=data["user_id"], chat_id=data["chat_id"],
        state=ConversationState(data["state"]), language=data["language"], transcript=transcript,
        profile=CustomerProfile.from_json(data.get("profile") or {}),
        pending_suggestions=tuple(data.get("pending_suggestions") or ()), failures=int(data.get("failures", 0)),
        handoff=handoff, updated_at=float(data.get("updated_at", 0.0)),
        pending_action=str(data.get("pending_action") or ""), slots=dict(data.get("slots") or {}),
    )


class Store:
    """Typed operations over Redis; the only module that knows the shape of stored data."""

    def __init__(self, redis: aioredis.Redis, config: StoreConfig) -> None:
        self.redis = redis
        self.config = config

    @classmethod
    def from_config(cls, config: StoreConfig) -> Store:
        return cls(connect(config.url), config)

    @property
    def durable(self) -> bool:
        return not self.config.url.startswith("memory://")

    @property
    def _ttl_seconds(self) -> int:
        return max(1, int(self.config.transcript_ttl_days * 86_400))

    async def ping(self) -> None:
        try:
            await self.redis.ping()
        except REDIS_ERRORS as exc:
            raise StoreUnavailable(f"cannot reach the store at {self.config.url}: {exc}") from exc

    async def close(self) -> None:
        await self.redis.aclose()

    async def load_conversation(self, conversation_id: str) -> Conversation | None:
        """The conversation with its most recent transcript lines, or None if unknown/expired."""
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.get(keys.conversation(conversation_id))
                pipe.lrange(keys.transcript(conversation_id), 0, -1)
                raw, lines = await pipe.execute()
        except REDIS_ERRORS as exc:
            raise StoreUnavailable(str(exc)) from exc
        if raw is None:
            return None
        transcript = tuple(TranscriptLine.from_json(json.loads(line)) for line in lines)
        return _conversation_from_json(raw, transcript)

    async def save_conversation(self, conv: Conversation, new_lines: Sequence[TranscriptLine] = ()) -> None:
        """Save state and append ``new_lines`` atomically; the transcript stays bounded and expires."""
        ttl = self._ttl_seconds
        try:
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.set(keys.conversation(conv.id), _conversation_to_json(conv), ex=ttl)
                if new_lines:
                    tkey = keys.transcript(conv.id)
                    pipe.rpush(tkey, *(json.dumps(line.to_json(), ensure_ascii=False) for line in new_lines))
                    pipe.ltrim(tkey, -self.config.transcript_max, -1)
                    pipe.expire(tkey, ttl)
                await pipe.execute()
        except REDIS_ERRORS as exc:
            raise StoreUnavailable(str(exc)) from exc

    async def first_time(self, namespace: str, item_id: str, ttl: int | None = None) -> bool:
        """True exactly once per (namespace, id) across all workers: message/update dedupe."""
        try:
            created = await self.redis.set(keys.seen(namespace, item_id), str(time.time()), nx=True,
                                           ex=ttl or self.config.dedupe_ttl_seconds)
        except REDIS_ERRORS as exc:
            raise StoreUnavailable(str(exc)) from exc
        return bool(created)

    async def count_message(self, conversation_id: str, now: float, window_seconds: int = 60) -> int:
        """How many messages this conversation sent in the current fixed window, this one included."""
        window = int(now // window_seconds)
        key = keys.rate(conversation_id, window)
        try:
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.incr(key)
                pipe.expire(key, window_seconds * 2)
                count, _ = await pipe.execute()
        except REDIS_ERRORS as exc:
            raise StoreUnavailable(str(exc)) from exc
        return int(count)

    async def remember(self, namespace: str, item_id: str) -> None:
        """Keep a :meth:`first_time` marker for the full dedupe period (the work it guarded is done)."""
        try:
            await self.redis.set(keys.seen(namespace, item_id), str(time.time()), ex=self.config.dedupe_ttl_seconds)
        except REDIS_ERRORS as exc:
            raise StoreUnavailable(str(exc)) from exc

    async def forget(self, namespace: str, item_id: str) -> None:
        """Undo :meth:`first_time` when a turn failed, so the platform's retry is processed."""
        await self.redis.delete(keys.seen(namespace, item_id))

    @asynccontextmanager
    async def conversation_lock(self, conversation_id: str) -> AsyncIterator[None]:
        """Serialise turns of one conversation across workers (WeChat retries, double clicks)."""
        timeout = self.config.conversation_lock_seconds
        lock = self.redis.lock(keys.lock(conversation_id), timeout=timeout, blocking_timeout=timeout)
        try:
            acquired = await lock.acquire()
        except REDIS_ERRORS as exc:
            raise StoreUnavailable(str(exc)) from exc
        if not acquired:
            raise StoreUnavailable(f"conversation {conversation_id} is busy")
        try:
            yield
        finally:
            try:
                await lock.release()
            except LockError:
                log.warning("lock on %s expired before the turn ended", conversation_id)
            except REDIS_ERRORS:
                log.warning("could not release lock on %s", conversation_id)

    async def clear(self) -> None:
        """Delete every Kefu key (tests and `kefu` maintenance only)."""
        async for key in self.redis.scan_iter(match=f"{keys.PREFIX}*", count=500):
            await self.redis.delete(key)
