"""Retention: delete what customers said once it is older than the configured period.

Conversations and transcripts already expire in Redis ``store.transcript_ttl_days`` after their
last message.  Copies live on elsewhere: closed handoff tickets (their transcript and notes),
the admin console's question and unanswered-question logs, and conversations saved before the
period was shortened.  :func:`purge` removes those too; ``kefu purge`` runs it (daily, from cron
or a systemd timer — docs/deploy.md).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import redis.asyncio as aioredis

from bot import keys

OPEN_TICKET_STATUSES = ("queued", "claimed")


@dataclass(frozen=True)
class PurgeReport:
    conversations: int = 0
    tickets: int = 0
    questions: int = 0

    def summary(self) -> str:
        return (f"purged {self.conversations} conversations, {self.tickets} closed tickets, "
                f"{self.questions} logged questions")


async def purge(redis: aioredis.Redis, cutoff: float) -> PurgeReport:
    """Delete customer data last touched before ``cutoff`` (epoch seconds); open tickets stay.
    ``redis`` decodes responses, as every client from :func:`bot.store.connect` does."""
    return PurgeReport(
        conversations=await _purge_conversations(redis, cutoff),
        tickets=await _purge_tickets(redis, cutoff),
        questions=sum([await _purge_log(redis, keys.admin_questions(), cutoff),
                       await _purge_log(redis, keys.admin_unanswered(), cutoff)]),
    )


async def _purge_conversations(redis: aioredis.Redis, cutoff: float) -> int:
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


async def _purge_tickets(redis: aioredis.Redis, cutoff: float) -> int:
    removed = 0
    async for key in redis.scan_iter(match=keys.agent_ticket_pattern(), count=500):
        ticket_id = key.removeprefix(keys.agent_ticket(""))
        if ":" in ticket_id:  # the ticket's notes list, deleted with the ticket
            continue
        status, closed_at = await redis.hmget(key, "status", "closed_at")
        if status is None or status in OPEN_TICKET_STATUSES:
            continue
        try:
            closed = float(closed_at or 0)
        except ValueError:
            continue
        if closed < cutoff:
            removed += await redis.delete(key, keys.agent_ticket_notes(ticket_id)) > 0
    return removed


async def _purge_log(redis: aioredis.Redis, key: str, cutoff: float) -> int:
    """Drop the old head of a time-ordered JSON list (newest last)."""
    old = 0
    for raw in await redis.lrange(key, 0, -1):
        try:
            at = float(json.loads(raw).get("at", 0))
        except (ValueError, TypeError, AttributeError):
            at = 0.0
        if at >= cutoff:
            break
        old += 1
    if old:
        await redis.ltrim(key, old, -1)
    return old
