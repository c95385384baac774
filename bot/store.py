"""The store: all durable state, over ``redis.asyncio``.

``redis://`` URLs use a real Redis shared by every worker; ``memory://`` runs the *same code*
against an in-process fakeredis server, so the embedded default behaves like production
except that it is not durable and not shared between processes.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
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

# KEYS: seen marker, lock, conversation, transcript.  ARGV: message id ('' = no claim), marker
# value, claim seconds, lock token, lock milliseconds.  {0} duplicate, {1} locked, {2, doc, lines}.
_BEGIN_TURN = """
if ARGV[1] ~= '' and not redis.call('SET', KEYS[1], ARGV[2], 'NX', 'EX', ARGV[3]) then return {0} end
if not redis.call('SET', KEYS[2], ARGV[4], 'NX', 'PX', ARGV[5]) then return {1} end
return {2, redis.call('GET', KEYS[3]), redis.call('LRANGE', KEYS[4], 0, -1)}
"""
# KEYS: lock, seen marker.  ARGV: lock token, message id, dedupe seconds (0 = forget), marker value.
_END_TURN = """
local released = 0
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]); released = 1 end
if ARGV[2] ~= '' then
  if tonumber(ARGV[3]) > 0 then redis.call('SET', KEYS[2], ARGV[4], 'EX', ARGV[3])
  else redis.call('DEL', KEYS[2]) end
end
return released
"""


@dataclass(frozen=True)
class TurnStart:
    """A turn that may run: the lock token and the stored conversation (None: a new one)."""

    token: str
    conversation: Conversation | None


REDIS_ERRORS = (RedisConnectionError, RedisTimeoutError, OSError)
WAIT_REPLICAS_MS = 500  # store.wait_replicas: how long a turn waits for its replicas at most
RedisCommand = tuple[str | int | float, ...]  # a command and its arguments, e.g. ("HINCRBY", key, field, 1)


SENTINEL_SCHEME = "redis+sentinel://"
SENTINEL_FORM = "redis+sentinel://[:PASSWORD@]HOST:PORT[,HOST:PORT...]/MASTER_NAME[/DB]"


@dataclass(frozen=True)
class SentinelUrl:
    """``store.url`` naming Sentinels and the master they watch instead of one Redis."""

    sentinels: tuple[tuple[str, int], ...]
    master: str
    db: int
    password: str | None

    @classmethod
    def parse(cls, url: str) -> SentinelUrl:
        netloc, _, path = url.removeprefix(SENTINEL_SCHEME).partition("/")
        credentials, _, hosts = netloc.rpartition("@")
        password = credentials.partition(":")[2] or None if credentials else None
        sentinels = []
        for host in filter(None, hosts.split(",")):
            name, _, port = host.rpartition(":") if ":" in host else (host, "", "26379")
            if not name or not port.isdigit():
                raise ConfigError(f"store.url: {host!r} is not HOST:PORT (expected {SENTINEL_FORM})")
            sentinels.append((name, int(port)))
        parts = [part for part in path.split("/") if part]
        if not sentinels or not parts or len(parts) > 2 or (len(parts) == 2 and not parts[1].isdigit()):
            shown = re.sub(r":[^@/]*@", ":***@", url)  # never a password in an error line
            raise ConfigError(f"store.url: expected {SENTINEL_FORM}, got {shown!r}")
        return cls(tuple(sentinels), parts[0], int(parts[1]) if len(parts) == 2 else 0, password)


def connect(url: str) -> aioredis.Redis:
    """A client for ``url``; ``memory://`` gives an in-process fakeredis server, and
    ``redis+sentinel://`` a client that asks the Sentinels where the master is, again after a
    failover."""
    if url.startswith("memory://"):
        import fakeredis

        return fakeredis.FakeAsyncRedis(decode_responses=True)
    if not url.startswith(("redis://", "rediss://", "unix://", SENTINEL_SCHEME)):
        raise ConfigError(f"store.url must start with memory://, redis://, rediss://, unix:// or "
                          f"{SENTINEL_SCHEME}, got {url!r}")
    # A connection that died with a restarted Redis is retried on a fresh one (twice, quickly)
    # instead of failing the first turns after the restart.  Only connection errors: a command
    # that timed out may have run, and running it again could apply it twice.
    retry = Retry(ExponentialBackoff(cap=0.2, base=0.02), 2, supported_errors=(RedisConnectionError,))
    if url.startswith(SENTINEL_SCHEME):
        from redis.asyncio.sentinel import Sentinel

        where = SentinelUrl.parse(url)
        sentinel = Sentinel(list(where.sentinels), socket_timeout=1,  # type: ignore[no-untyped-call]
                            socket_connect_timeout=1)
        client: aioredis.Redis = sentinel.master_for(where.master, decode_responses=True, socket_timeout=5,
                                                     socket_connect_timeout=5, retry=retry, db=where.db,
                                                     password=where.password)
        return client
    return aioredis.Redis.from_url(url, decode_responses=True, socket_timeout=5, socket_connect_timeout=5,
                                   retry=retry)


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


def _stored_conversation(raw: str | None, lines: Sequence[str]) -> Conversation | None:
    """The conversation as read from its document and transcript list (None: not stored)."""
    if not raw:
        return None
    return _conversation_from_json(raw, tuple(TranscriptLine.from_json(json.loads(line)) for line in lines))


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
        return _stored_conversation(raw, lines)

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

    async def forget(self, namespace: str, item_id: str) -> None:
        """Undo :meth:`first_time` when the work it guarded failed, so a retry is processed."""
        await self.redis.delete(keys.seen(namespace, item_id))

    async def begin_turn(self, conversation_id: str, namespace: str, message_id: str) -> TurnStart | None:
        """Claim the message id, take the conversation lock and load the conversation, in one
        round trip when nobody else holds the lock.  None: the message is a duplicate.

        The claim lasts as long as the lock may; :meth:`end_turn` makes it permanent (done) or
        drops it (failed), so a retry after a worker died mid-turn is answered."""
        token = uuid.uuid4().hex
        lock_ms = max(1, int(self.config.conversation_lock_seconds * 1000))
        claim = max(1, int(self.config.conversation_lock_seconds))
        keys_ = [keys.seen(namespace, message_id or "-"), keys.lock(conversation_id),
                 keys.conversation(conversation_id), keys.transcript(conversation_id)]
        deadline = time.monotonic() + self.config.conversation_lock_seconds
        args: list[str | int] = [message_id, str(time.time()), claim, token, lock_ms]
        delay = 0.01
        try:
            while True:
                status, *loaded = await self.redis.eval(_BEGIN_TURN, 4, *keys_, *args)
                if int(status) == 0:
                    return None
                if int(status) == 2:
                    return TurnStart(token, _stored_conversation(*loaded))
                args[0] = ""  # claimed; now only wait for the lock
                if time.monotonic() > deadline:
                    if message_id:
                        await self.forget(namespace, message_id)
                    raise StoreUnavailable(f"conversation {conversation_id} is busy")
                await asyncio.sleep(delay)
                delay = min(delay * 2, 0.2)
        except REDIS_ERRORS as exc:
            raise StoreUnavailable(str(exc)) from exc

    async def end_turn(self, conversation_id: str, start: TurnStart, namespace: str, message_id: str,
                       done: bool, also: Sequence[RedisCommand] = ()) -> None:
        """Release the lock and settle the message id: remembered for the dedupe period when the
        turn was saved (``done``), forgotten when it failed so the platform's retry is processed.

        ``also`` rides along in the same round trip (the dashboard's counters); their failure
        is logged, never raised: a statistic must not fail a customer's turn."""
        ttl = self.config.dedupe_ttl_seconds if done else 0
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.eval(_END_TURN, 2, keys.lock(conversation_id), keys.seen(namespace, message_id or "-"),
                          start.token, message_id, ttl, str(time.time()))
                for command in also:
                    pipe.execute_command(*command)
                if done and self.config.wait_replicas:  # the turn reaches a replica before it is answered
                    pipe.execute_command("WAIT", self.config.wait_replicas, WAIT_REPLICAS_MS)
                released, *extra = await pipe.execute(raise_on_error=False)
        except REDIS_ERRORS as exc:
            raise StoreUnavailable(str(exc)) from exc
        if isinstance(released, Exception):
            raise released
        if done and self.config.wait_replicas:
            acked = extra.pop()
            if not isinstance(acked, Exception) and int(acked) < self.config.wait_replicas:
                log.warning("turn on %s reached %s of %d replicas within %d ms", conversation_id, acked,
                            self.config.wait_replicas, WAIT_REPLICAS_MS)
        if not int(released):
            log.warning("lock on %s expired before the turn ended", conversation_id)
        for failed in (reply for reply in extra if isinstance(reply, Exception)):
            log.warning("a command after the turn on %s failed: %s", conversation_id, failed)

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
