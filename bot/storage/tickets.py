"""Handoff tickets and the waiting queue, in Redis.

Why a sorted set and not a stream: the queue must be ordered by priority (complaints first)
and then by waiting time, and the customer must be told their position; a sorted set scored
``priority * 1e10 + created_at`` gives both (``ZRANK``).  Every transition that must happen
exactly once (open, claim, transfer, close) is one Lua script, so two agents clicking "claim"
on two workers get one winner, and a worker killed mid-request leaves either the old state or
the new one, never half of each.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Sequence
from typing import Any

import redis.asyncio as aioredis

from bot import keys
from bot.agents.tickets import DEFAULT_PRIORITY, OPEN_STATUSES, PRIORITY, Ticket
from bot.storage.scripts import Lua
from bot.types import Conversation, HandoffRequest, Role

CLOSED_TTL_SECONDS = 90 * 86_400
OPEN_TICKET_STATUSES = OPEN_STATUSES  # never purged
CUSTOMER_HISTORY = 20

_OPEN = """
local HISTORY = CUSTOMER_HISTORY_VALUE
local existing = redis.call('GET', KEYS[1])
if existing and redis.call('EXISTS', KEYS[2] .. existing) == 1 then return existing end
local id = ARGV[1]
redis.call('SET', KEYS[1], id)
local fields = {}
for i = 3, #ARGV do fields[#fields + 1] = ARGV[i] end
redis.call('HSET', KEYS[2] .. id, unpack(fields))
redis.call('ZADD', KEYS[3], ARGV[2], id)
redis.call('RPUSH', KEYS[4], id)
redis.call('LTRIM', KEYS[4], -HISTORY, -1)
return id
"""

_OPEN = _OPEN.replace("CUSTOMER_HISTORY_VALUE", str(CUSTOMER_HISTORY))

_CLAIM = """
local limit = tonumber(ARGV[4])
if limit > 0 and redis.call('SCARD', KEYS[4]) >= limit then return -1 end
if redis.call('ZREM', KEYS[1], ARGV[1]) == 1 then
  redis.call('HSET', KEYS[2], 'status', 'claimed', 'owner', ARGV[2], 'claimed_at', ARGV[3], 'assigned', ARGV[5])
  redis.call('SADD', KEYS[3], ARGV[1])
  redis.call('SADD', KEYS[4], ARGV[1])
  return 1
end
return 0
"""

# Auto-assignment: among the candidates (agent, limit, last-assigned time) pick the least busy
# (or, round robin, the one assigned longest ago) below their limit, and claim for them, all in
# one script: two workers assigning at once can neither give a ticket twice nor overfill anyone.
_ASSIGN = """
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then return '' end
local best, best_load, best_last = nil, nil, nil
for i = 4, #ARGV, 2 do
  local agent, limit = ARGV[i], tonumber(ARGV[i + 1])
  local load = redis.call('SCARD', KEYS[4] .. agent)
  if load < limit then
    local last = tonumber(redis.call('HGET', KEYS[5], agent) or '0')
    local better = best == nil
    if not better and ARGV[3] == 'least_busy' then
      better = load < best_load or (load == best_load and last < best_last)
    elseif not better then
      better = last < best_last
    end
    if better then best, best_load, best_last = agent, load, last end
  end
end
if best == nil then return '' end
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('HSET', KEYS[2], 'status', 'claimed', 'owner', best, 'claimed_at', ARGV[2], 'assigned', 'auto')
redis.call('SADD', KEYS[3], ARGV[1])
redis.call('SADD', KEYS[4] .. best, ARGV[1])
redis.call('HSET', KEYS[5], best, ARGV[2])
return best
"""

# Back to the queue (owner gone past the grace period, transfer to a group, a lead's reassign):
# the ticket keeps its original place (score) so the customer does not start again at the back.
_REQUEUE = """
if redis.call('HGET', KEYS[2], 'status') ~= 'claimed' then return 0 end
local owner = redis.call('HGET', KEYS[2], 'owner')
if ARGV[2] ~= '' and owner ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[2], 'status', 'queued', 'owner', '', 'requeued_at', ARGV[4], 'previous_owner', owner)
if ARGV[3] ~= '-' then redis.call('HSET', KEYS[2], 'group', ARGV[3]) end
redis.call('SREM', KEYS[3], ARGV[1])
redis.call('SREM', KEYS[4] .. owner, ARGV[1])
redis.call('ZADD', KEYS[1], ARGV[5], ARGV[1])
return 1
"""

_TRANSFER = """
if redis.call('HGET', KEYS[1], 'status') ~= 'claimed' then return 0 end
local owner = redis.call('HGET', KEYS[1], 'owner')
if ARGV[2] ~= '' and owner ~= ARGV[2] then return 0 end
local limit = tonumber(ARGV[4])
if limit > 0 and redis.call('SCARD', KEYS[2] .. ARGV[1]) >= limit then return -1 end
redis.call('HSET', KEYS[1], 'owner', ARGV[1])
redis.call('SREM', KEYS[2] .. owner, ARGV[3])
redis.call('SADD', KEYS[2] .. ARGV[1], ARGV[3])
return 1
"""

_CLOSE = """
local status = redis.call('HGET', KEYS[3], 'status')
if status ~= 'queued' and status ~= 'claimed' then return 0 end
local owner = redis.call('HGET', KEYS[3], 'owner') or ''
if ARGV[4] ~= '' and owner ~= ARGV[4] then return 0 end
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('SREM', KEYS[2], ARGV[1])
if owner ~= '' then redis.call('SREM', KEYS[5] .. owner, ARGV[1]) end
redis.call('HSET', KEYS[3], 'status', ARGV[2], 'closed_at', ARGV[3])
redis.call('EXPIRE', KEYS[3], ARGV[5])
if redis.call('GET', KEYS[4]) == ARGV[1] then redis.call('DEL', KEYS[4]) end
redis.call('ZADD', KEYS[6], ARGV[3], ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[6], '-inf', ARGV[3] - ARGV[5])
return 1
"""



class TicketStore:
    """Ticket state transitions over Redis; all-or-nothing, safe from any worker."""

    def __init__(self, redis: aioredis.Redis, clock: Any = time.time) -> None:
        self.redis = redis
        self.clock = clock
        self._open = Lua(redis, _OPEN)
        self._claim = Lua(redis, _CLAIM)
        self._transfer = Lua(redis, _TRANSFER)
        self._close = Lua(redis, _CLOSE)
        self._assign = Lua(redis, _ASSIGN)
        self._requeue = Lua(redis, _REQUEUE)

    async def open(self, conv: Conversation, request: HandoffRequest, *, after_hours: bool,
                   summary: str, context: dict[str, Any], group: str = "",
                   left_message: bool = False) -> tuple[Ticket, bool]:
        """Open the conversation's ticket, or return the one already open; (ticket, created).

        A message left while nobody could answer ranks with requests for a human (complaints
        still first): the next agent to come online finds it ahead of newer questions, which
        have waited less (service rule 6)."""
        now = self.clock()
        ticket_id = uuid.uuid4().hex[:12]
        priority = PRIORITY.get(request.reason, DEFAULT_PRIORITY)
        if conv.channel == "web" and not any(line.role is Role.BOT for line in conv.transcript):
            priority = DEFAULT_PRIORITY  # an anonymous chat's first words cannot jump the queue
        if left_message:
            priority = min(priority, PRIORITY["human_request"])
        fields: dict[str, str] = {
            "id": ticket_id, "conversation_id": conv.id, "channel": conv.channel, "user_id": conv.user_id,
            "reason": request.reason, "detail": request.detail, "language": conv.language,
            "priority": str(priority), "created_at": repr(now), "status": "queued",
            "after_hours": "1" if after_hours else "", "summary": summary,
            "customer_name": conv.profile.name, "context": json.dumps(context, ensure_ascii=False),
            "group": group, "left_message": "1" if left_message else "",
        }
        flat = [item for pair in fields.items() for item in pair]
        prefix = keys.agent_ticket("")
        got = await self._open(
            [keys.agent_open_ticket(conv.id), prefix, keys.agent_queue(),
             keys.agent_customer_tickets(conv.channel, conv.user_id)],
            [ticket_id, repr(priority * 1e10 + now), *flat])
        ticket = await self.get(str(got))
        assert ticket is not None
        return ticket, str(got) == ticket_id

    async def get(self, ticket_id: str) -> Ticket | None:
        data: dict[str, str] = await self.redis.hgetall(keys.agent_ticket(ticket_id))  # type: ignore[assignment]
        return Ticket.from_hash(data) if data else None

    async def many(self, ids: Sequence[str]) -> list[Ticket]:
        if not ids:
            return []
        async with self.redis.pipeline(transaction=False) as pipe:
            for ticket_id in ids:
                pipe.hgetall(keys.agent_ticket(ticket_id))
            rows = await pipe.execute()
        return [Ticket.from_hash(row) for row in rows if row]

    async def open_for(self, conversation_id: str) -> Ticket | None:
        ticket_id = await self.redis.get(keys.agent_open_ticket(conversation_id))
        if ticket_id is None:
            return None
        ticket = await self.get(str(ticket_id))
        return ticket if ticket is not None and ticket.open else None

    async def queued(self) -> list[Ticket]:
        """Waiting tickets in the order agents should take them."""
        return await self.many([str(i) for i in await self.redis.zrange(keys.agent_queue(), 0, -1)])

    async def active(self) -> list[Ticket]:
        tickets = await self.many(sorted(str(i) for i in await self.redis.smembers(keys.agent_active())))
        return sorted(tickets, key=lambda t: t.claimed_at)

    async def position(self, ticket_id: str) -> int | None:
        """1-based place in the queue, or None when not waiting."""
        rank = await self.redis.zrank(keys.agent_queue(), ticket_id)
        return None if rank is None else int(rank) + 1  # type: ignore[arg-type]

    async def customer_history(self, channel: str, user_id: str) -> list[Ticket]:
        ids = await self.redis.lrange(keys.agent_customer_tickets(channel, user_id), 0, -1)
        return await self.many([str(i) for i in ids])

    async def claim(self, ticket_id: str, agent: str, limit: int = 0) -> int:
        """1 claimed, 0 someone else has it (or it closed), -1 the agent is at ``limit`` chats."""
        return int(await self._claim(
            [keys.agent_queue(), keys.agent_ticket(ticket_id), keys.agent_active(), keys.agent_owned(agent)],
            [ticket_id, agent, repr(self.clock()), limit, ""]))

    async def assign(self, ticket_id: str, candidates: Sequence[tuple[str, int]], strategy: str) -> str:
        """Give a waiting ticket to the best candidate below their limit; the agent, or ""."""
        flat = [item for name, limit in candidates for item in (name, limit)]
        got = await self._assign(
            [keys.agent_queue(), keys.agent_ticket(ticket_id), keys.agent_active(), keys.agent_owned(""),
             keys.agent_last_assigned()],
            [ticket_id, repr(self.clock()), strategy, *flat])
        return str(got or "")

    async def requeue(self, ticket: Ticket, expected_owner: str = "", group: str | None = None) -> bool:
        """A claimed ticket back to its old place in the queue (optionally for a skill group)."""
        score = repr(ticket.priority * 1e10 + ticket.created_at)
        return bool(await self._requeue(
            [keys.agent_queue(), keys.agent_ticket(ticket.id), keys.agent_active(), keys.agent_owned("")],
            [ticket.id, expected_owner, "-" if group is None else group, repr(self.clock()), score]))

    async def reprioritise(self, ticket: Ticket, priority: int) -> bool:
        """Move a still-waiting ticket up to ``priority`` (an escalation while waiting)."""
        if priority >= ticket.priority:
            return False
        changed = await self.redis.zadd(keys.agent_queue(), {ticket.id: priority * 1e10 + ticket.created_at},
                                        xx=True, ch=True)
        if changed:
            await self.set_fields(ticket.id, priority=str(priority))
        return bool(changed)

    async def owned(self, agent: str) -> list[str]:
        return sorted(str(i) for i in await self.redis.smembers(keys.agent_owned(agent)))

    async def load(self, agent: str) -> int:
        return int(await self.redis.scard(keys.agent_owned(agent)))

    async def transfer(self, ticket_id: str, to: str, expected_owner: str = "", limit: int = 0) -> int:
        """1 moved, 0 the ticket changed meanwhile, -1 ``to`` is at ``limit`` chats."""
        return int(await self._transfer([keys.agent_ticket(ticket_id), keys.agent_owned("")],
                                        [to, expected_owner, ticket_id, limit]))

    async def close(self, ticket: Ticket, status: str, expected_owner: str = "") -> bool:
        return bool(await self._close(
            [keys.agent_queue(), keys.agent_active(), keys.agent_ticket(ticket.id),
             keys.agent_open_ticket(ticket.conversation_id), keys.agent_owned(""), keys.agent_closed()],
            [ticket.id, status, repr(self.clock()), expected_owner, CLOSED_TTL_SECONDS]))

    async def closed(self, since: float = 0.0, limit: int = 500) -> list[Ticket]:
        """Closed tickets, newest first (kept for ``CLOSED_TTL_SECONDS``)."""
        ids = await self.redis.zrevrangebyscore(keys.agent_closed(), "+inf", since, start=0, num=limit)
        return await self.many([str(i) for i in ids])

    async def mark_escalated(self, ticket_id: str) -> bool:
        """True only for the first caller, so an escalation is announced once."""
        return bool(await self.redis.hsetnx(keys.agent_ticket(ticket_id), "escalated_at", repr(self.clock())))

    async def last_position(self, ticket_id: str) -> tuple[int, float]:
        """The queue position last told to the ticket's customer (0: none) and when."""
        last, at = await self.redis.hmget(keys.agent_ticket(ticket_id), ["last_position", "last_position_at"])
        return int(last or 0), float(at or 0)

    async def first_response(self, ticket_id: str, at: float) -> None:
        """The owner's first message to the customer (kept only the first time)."""
        await self.redis.hsetnx(keys.agent_ticket(ticket_id), "first_response_at", repr(at))

    async def searchable_text(self, ticket_id: str) -> str:
        """The conversation's text as saved at closing, for the resolved tickets' search."""
        return str(await self.redis.hget(keys.agent_ticket(ticket_id), "text") or "")

    async def set_fields(self, ticket_id: str, **values: str) -> None:
        await self.redis.hset(keys.agent_ticket(ticket_id), mapping=dict(values))  # type: ignore[arg-type]

    async def add_note(self, ticket_id: str, agent: str, text: str, kind: str = "note") -> dict[str, Any]:
        note = {"agent": agent, "text": text, "at": self.clock(), "kind": kind}
        await self.redis.rpush(keys.agent_ticket_notes(ticket_id), json.dumps(note, ensure_ascii=False))
        return note

    async def notes(self, ticket_id: str) -> list[dict[str, Any]]:
        return [json.loads(raw) for raw in await self.redis.lrange(keys.agent_ticket_notes(ticket_id), 0, -1)]

    async def purge_closed(self, cutoff: float) -> int:
        """Delete closed tickets (and their notes) closed before ``cutoff``; returns how many went."""
        removed = 0
        async for key in self.redis.scan_iter(match=keys.agent_ticket_pattern(), count=500):
            ticket_id = key.removeprefix(keys.agent_ticket(""))
            if ":" in ticket_id:  # the ticket's notes list, deleted with the ticket
                continue
            status, closed_at = await self.redis.hmget(key, "status", "closed_at")
            if status is None or status in OPEN_TICKET_STATUSES:
                continue
            try:
                closed = float(closed_at or 0)
            except ValueError:
                continue
            if closed < cutoff:
                removed += await self.redis.delete(key, keys.agent_ticket_notes(ticket_id)) > 0
        return removed
