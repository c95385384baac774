"""Retention: delete what customers said once it is older than the configured period.

Conversations and transcripts already expire in Redis ``store.transcript_ttl_days`` after their
last message.  Copies live on elsewhere: closed handoff tickets (their transcript and notes),
the admin console's question and unanswered-question logs, and conversations saved before the
period was shortened.  :func:`purge` removes those too; ``kefu purge`` runs it (daily, from cron
or a systemd timer — docs/deploy.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import redis.asyncio as aioredis

from bot.storage.conversations import purge_conversations
from bot.storage.records import AdminRecords
from bot.storage.tickets import OPEN_TICKET_STATUSES, TicketStore

__all__ = ["OPEN_TICKET_STATUSES", "PurgeReport", "purge"]


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
    ``redis`` decodes responses, as every client from :func:`bot.storage.client.connect` does."""
    return PurgeReport(
        conversations=await purge_conversations(redis, cutoff),
        tickets=await TicketStore(redis).purge_closed(cutoff),
        questions=await AdminRecords(redis).purge(cutoff),
    )
