"""Conversations: their state document, numbered transcript, turn lock, message dedupe and rate counters.

The engine's three round trips per turn all land here: :meth:`Store.begin_turn` (claim, lock,
load), :meth:`Store.save_conversation` (state and new lines) and :meth:`Store.end_turn` (unlock,
remember the message id, and apply what observers of the turn recorded, as data).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import LockError

from bot import keys
from bot.config import StoreConfig, redact
from bot.errors import StoreUnavailable
from bot.storage.client import REDIS_ERRORS, connect
from bot.storage.records import AdminRecords, TurnRecord
from bot.storage.scripts import Batch, Lua
from bot.storage.web import WebSessions
from bot.types import (
    Candidate,
    Conversation,
    ConversationState,
    CustomerProfile,
    HandoffRequest,
    TranscriptLine,
)

log = logging.getLogger(__name__)

# KEYS: seen marker, lock, conversation, transcript.  ARGV: message id ('' = no claim), claim
# marker, claim seconds, lock token, lock milliseconds.  {0, marker} duplicate, {1} locked,
# {2, doc, lines}.  The marker says whether the first turn is still running ("run:…") or done.
_BEGIN_TURN = """
if ARGV[1] ~= '' and not redis.call('SET', KEYS[1], ARGV[2], 'NX', 'EX', ARGV[3]) then
  return {0, redis.call('GET', KEYS[1])}
end
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
# KEYS: conversation, transcript, transcript seq.  ARGV: document, ttl, lines to keep, lines to
# keep while a ticket is open, lines (JSON objects).  Each line gets the next ``seq`` as its first
# field, in the same atomic step that appends it, so ids are ordered and never reused even across
# workers (trimming removes lines, never renumbers them).  Over the limit, the oldest lines of a
# flood (messages beyond the rate limit, and the bot's "slow down") go first, so a flood never
# pushes out what the customer really said (an order number); while a ticket is open the limit is
# higher, so the agent keeps the whole context.  Returns the last seq.
_SAVE = """
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
local added = #ARGV - 4
local last
if added > 0 then
  last = redis.call('INCRBY', KEYS[3], added)
  for i = 1, added do
    redis.call('RPUSH', KEYS[2], '{"seq":' .. (last - added + i) .. ',' .. string.sub(ARGV[4 + i], 2))
  end
  local max, cap = tonumber(ARGV[3]), tonumber(ARGV[4])
  local n = redis.call('LLEN', KEYS[2])
  if n > max then
    local excess, dropped = n - max, 0
    for i, line in ipairs(redis.call('LRANGE', KEYS[2], 0, n - added - 1)) do
      if dropped >= excess then break end
      if string.find(line, '"rate_limited": true', 1, true) or string.find(line, '"kind": "rate_limited"', 1, true) then
        redis.call('LSET', KEYS[2], i - 1, '\0kefu-drop'); dropped = dropped + 1
      end
    end
    if dropped > 0 then redis.call('LREM', KEYS[2], 0, '\0kefu-drop') end
    if n - dropped > cap then redis.call('LTRIM', KEYS[2], -cap, -1) end
  end
  redis.call('EXPIRE', KEYS[2], ARGV[2])
else
  last = tonumber(redis.call('GET', KEYS[3]) or '0')
end
redis.call('EXPIRE', KEYS[3], ARGV[2])
return last
"""
OPEN_TICKET_FACTOR = 5  # transcript_max × this many lines are kept while an agent may still need them
RUNNING = "run:"  # claim marker of a turn in progress; a finished turn's marker is "done:<time>"


@dataclass(frozen=True)
class Duplicate:
    """The message id was claimed before: its turn is finished, or still running somewhere."""

    in_progress: bool


@dataclass(frozen=True)
class TurnStart:
    """A turn that may run: the lock token and the stored conversation (None: a new one)."""

    token: str
    conversation: Conversation | None


_TICKET_OPEN = (ConversationState.WAITING, ConversationState.AGENT)
WAIT_REPLICAS_MS = 500  # store.wait_replicas: how long a turn waits for its replicas at most


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
    """Conversations and their turns, plus the repositories a turn writes alongside them.

    ``redis`` stays public for the repositories built on the same client (tickets, agents,
    outbox, ...); code above the storage layer calls the repositories, not the client."""

    def __init__(self, redis: aioredis.Redis, config: StoreConfig) -> None:
        self.redis = redis
        self.config = config
        self.records = AdminRecords(redis)
        self.web = WebSessions(redis, self._ttl_seconds)
        self._begin = Lua(redis, _BEGIN_TURN)
        self._end = Lua(redis, _END_TURN)
        self._save = Lua(redis, _SAVE)

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
            raise StoreUnavailable(f"cannot reach the store at {redact(self.config.url)}: {exc}") from exc

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

    async def save_conversation(self, conv: Conversation, new_lines: Sequence[TranscriptLine] = ()) -> int:
        """Save state and append ``new_lines`` atomically, numbering them; the transcript stays
        bounded (floods trimmed first, more kept while a ticket is open) and expires.  Returns the
        seq of the conversation's last line."""
        limit = self.config.transcript_max
        cap = limit * OPEN_TICKET_FACTOR if conv.state in _TICKET_OPEN else limit
        args: list[str | int] = [_conversation_to_json(conv), self._ttl_seconds, limit, cap,
                *(json.dumps(replace(line, seq=0).to_json(), ensure_ascii=False) for line in new_lines)]
        try:
            last = await self._save([keys.conversation(conv.id), keys.transcript(conv.id),
                                     keys.transcript_seq(conv.id)], args)
        except REDIS_ERRORS as exc:
            raise StoreUnavailable(str(exc)) from exc
        return int(last)

    async def last_seq(self, conversation_id: str) -> int:
        """The seq of the conversation's last saved line (0: none): a cheap "anything new?"."""
        try:
            return int(await self.redis.get(keys.transcript_seq(conversation_id)) or 0)
        except REDIS_ERRORS as exc:
            raise StoreUnavailable(str(exc)) from exc

    async def watch(self, conversation_id: str) -> tuple[int, bool]:
        """The last line's seq and whether the agent is typing: what a waiting web page polls."""
        try:
            seq, typing = await self.redis.mget(keys.transcript_seq(conversation_id), keys.web_typing(conversation_id))
        except REDIS_ERRORS as exc:
            raise StoreUnavailable(str(exc)) from exc
        return int(seq or 0), typing is not None

    # The web chat's own data lives in :class:`WebSessions`; these keep the store's old names.
    async def save_attachment(self, attachment_id: str, owner: str, content_type: str, name: str,
                              data: bytes) -> None:
        """Keep a visitor's file for the agent, as long as a transcript is kept."""
        await self.web.save_attachment(attachment_id, owner, content_type, name, data)

    async def load_attachment(self, attachment_id: str) -> tuple[str, str, str, bytes] | None:
        """(owner, content type, name, bytes) of a kept file, or None."""
        return await self.web.load_attachment(attachment_id)

    async def set_visitor_name(self, visitor_id: str, name: str) -> None:
        await self.web.set_visitor_name(visitor_id, name)

    async def visitor_name(self, visitor_id: str) -> str:
        """The name the website vouched for ("" if none)."""
        return await self.web.visitor_name(visitor_id)

    async def set_typing(self, conversation_id: str, seconds: float) -> None:
        """Show "the agent is typing" to the customer for ``seconds`` (it lapses by itself)."""
        await self.web.set_typing(conversation_id, seconds)

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

    async def begin_turn(self, conversation_id: str, namespace: str, message_id: str) -> TurnStart | Duplicate:
        """Claim the message id, take the conversation lock and load the conversation, in one
        round trip when nobody else holds the lock.

        The claim lasts as long as the lock may; :meth:`end_turn` makes it permanent (done) or
        drops it (failed), so a retry after a worker died mid-turn is answered.  A duplicate
        says whether the first turn is still running, so the client retries instead of
        taking "duplicate" for "answered"."""
        token = uuid.uuid4().hex
        lock_ms = max(1, int(self.config.conversation_lock_seconds * 1000))
        claim = max(1, int(self.config.conversation_lock_seconds))
        claim_key = keys.message_claim(conversation_id, namespace, message_id or "-")
        keys_ = [claim_key, keys.lock(conversation_id),
                 keys.conversation(conversation_id), keys.transcript(conversation_id)]
        deadline = time.monotonic() + self.config.conversation_lock_seconds
        args: list[str | int] = [message_id, RUNNING + token, claim, token, lock_ms]
        delay = 0.01
        try:
            while True:
                status, *loaded = await self._begin(keys_, args)
                if int(status) == 0:
                    return Duplicate(in_progress=str(loaded[0] or "").startswith(RUNNING))
                if int(status) == 2:
                    return TurnStart(token, _stored_conversation(*loaded))
                args[0] = ""  # claimed; now only wait for the lock
                if time.monotonic() > deadline:
                    if message_id:
                        await self.redis.delete(claim_key)
                    raise StoreUnavailable(f"conversation {conversation_id} is busy")
                await asyncio.sleep(delay)
                delay = min(delay * 2, 0.2)
        except REDIS_ERRORS as exc:
            raise StoreUnavailable(str(exc)) from exc

    async def end_turn(self, conversation_id: str, start: TurnStart, namespace: str, message_id: str,
                       done: bool, records: Sequence[TurnRecord] = ()) -> None:
        """Release the lock and settle the message id: remembered for the dedupe period when the
        turn was saved (``done``), forgotten when it failed so the platform's retry is processed.

        ``records`` (what observers of the turn noted: the dashboard's counters, the question)
        are written in the same round trip by their own repository; their failure is logged,
        never raised: a statistic must not fail a customer's turn."""
        ttl = self.config.dedupe_ttl_seconds if done else 0
        batch = Batch(self.redis)
        claim_key = keys.message_claim(conversation_id, namespace, message_id or "-")
        batch.script(self._end, [keys.lock(conversation_id), claim_key],
                     [start.token, message_id, ttl, f"done:{time.time()}"])
        for record in records:
            try:
                self.records.queue(batch, record)
            except (TypeError, ValueError):  # a record that cannot be encoded is dropped, the turn is not
                log.exception("turn on %s not recorded for the admin dashboard", conversation_id)
        waits = done and self.config.wait_replicas
        if waits:  # the turn reaches a replica before it is answered
            batch.command("WAIT", self.config.wait_replicas, WAIT_REPLICAS_MS, after_scripts=True)
        try:
            released, *extra = await batch.execute()
        except REDIS_ERRORS as exc:
            raise StoreUnavailable(str(exc)) from exc
        if isinstance(released, Exception):
            raise released
        if waits:
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


async def purge_conversations(redis: aioredis.Redis, cutoff: float) -> int:
    """Delete conversations (state, transcript, seq, held replies) last updated before ``cutoff``;
    returns how many went.  A document that cannot be read is never deleted."""
    removed = 0
    async for key in redis.scan_iter(match=keys.conversation_pattern(), count=500):
        raw = await redis.get(key)
        if raw is None:
            continue
        try:
            data = json.loads(raw)
            updated, conversation_id = float(data.get("updated_at", 0)), str(data["id"])
        except (ValueError, TypeError, KeyError):
            continue  # not ours to judge; never delete what cannot be read
        if updated < cutoff:
            removed += await redis.delete(keys.conversation(conversation_id), keys.transcript(conversation_id),
                                          keys.transcript_seq(conversation_id), keys.outbox(conversation_id)) > 0
    return removed
