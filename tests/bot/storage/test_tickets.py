"""The tickets repository: one open ticket per conversation, exactly-once transitions, purging."""

from __future__ import annotations

import redis.asyncio as aioredis

from bot import keys
from bot.storage.tickets import TicketStore
from bot.types import Conversation, HandoffRequest, InboundMessage


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


async def test_open_claim_close_and_purge(redis_client: aioredis.Redis) -> None:
    clock = Clock()
    tickets = TicketStore(redis_client, clock)
    conv = Conversation.start(InboundMessage("telegram", "42", "42", "人工", "m1"))
    ticket, created = await tickets.open(conv, HandoffRequest("complaint", "angry"), after_hours=False,
                                         summary="投诉", context={})
    again, created_again = await tickets.open(conv, HandoffRequest("complaint", "again"), after_hours=False,
                                              summary="", context={})
    assert created and not created_again and again.id == ticket.id
    assert [t.id for t in await tickets.queued()] == [ticket.id] and await tickets.position(ticket.id) == 1
    assert await tickets.claim(ticket.id, "li") == 1 and await tickets.claim(ticket.id, "wang") == 0
    assert await tickets.owned("li") == [ticket.id] and await tickets.load("li") == 1
    await tickets.first_response(ticket.id, clock.now + 5)
    await tickets.first_response(ticket.id, clock.now + 9)  # only the first counts
    assert (await tickets.get(ticket.id)).first_response_at == clock.now + 5  # type: ignore[union-attr]
    await tickets.add_note(ticket.id, "li", "看一下")
    assert await tickets.close(ticket, "resolved") and not await tickets.close(ticket, "resolved")
    assert await tickets.open_for(conv.id) is None and await tickets.load("li") == 0
    assert await tickets.purge_closed(clock.now) == 0  # closed after the cutoff: kept
    assert await tickets.purge_closed(clock.now + 1) == 1
    assert not await redis_client.exists(keys.agent_ticket(ticket.id), keys.agent_ticket_notes(ticket.id))
