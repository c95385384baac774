"""The human desk: what happens to a conversation between "转人工" and the survey's thank-you.

The engine calls :meth:`HumanDesk.open_ticket`, :meth:`customer_wrote`, :meth:`cancelled` and
:meth:`survey_answer` inside its per-conversation lock (so these never take that lock); console
actions (claim, reply, resolve, ...) take the same lock themselves, so an agent's reply and a
customer's message never interleave half-saved.  Messages to the customer are saved to the
transcript first (the web chat reads them from there) and then pushed through the customer's
own channel with ``Channel.deliver``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from bot import keys
from bot.agents.auth import Agent
from bot.agents.events import EventBus
from bot.agents.hours import ServiceHours
from bot.agents.survey import ask, ask_comment, is_no_comment, parse_rating
from bot.agents.tickets import Ticket, TicketStore, candidates_json, summarize
from bot.channels.base import Channel, DeliveryDeferred
from bot.config import AgentsConfig, Config, HandoffConfig
from bot.desk import SurveyTurn
from bot.errors import BadRequest
from bot.privacy import mask_pii
from bot.store import REDIS_ERRORS, Store
from bot.types import (
    Action,
    Conversation,
    ConversationState,
    Decision,
    HandoffRequest,
    Reply,
    Role,
    TranscriptLine,
)
from handlers import handoff as handoff_handler
from handlers.texts import say

log = logging.getLogger(__name__)
PRESENCE_SECONDS = 90
MAX_MESSAGE = 4000


class DeliveryFailed(BadRequest):
    """The customer's channel refused an agent's message (e.g. WeChat's 48-hour window)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, status=502)


def _queue_moved(position: int, wait: int) -> Callable[[str], Reply]:
    return lambda language: Reply(say("queue_moved", language, position=position, wait=wait))


def line_json(line: TranscriptLine) -> dict[str, Any]:
    return {"role": line.role.value, "text": line.text, "at": line.at,
            "agent": line.meta.get("agent", ""), "kind": line.meta.get("kind", ""),
            "attachments": line.meta.get("attachments", [])}


class HumanDesk:
    """Tickets, queue and survey over the shared store; one per worker, stateless between calls."""

    def __init__(self, store: Store, config: Config, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.config: AgentsConfig = config.agents
        self.handoff_config: HandoffConfig = config.handoff
        self.typing_seconds = config.channels.web.typing_seconds
        self.hours = ServiceHours(config.service_hours)
        self.mask_exports = config.security.mask_exports
        self.clock = clock
        self.tickets = TicketStore(store.redis, clock)
        self.events = EventBus(store.redis)
        self.channels: Mapping[str, Channel] = {}
        self._background: set[asyncio.Task[None]] = set()

    def attach_channels(self, channels: Mapping[str, Channel]) -> None:
        self.channels = channels

    # ----- engine side -------------------------------------------------------------------------

    async def open_ticket(self, conversation: Conversation, request: HandoffRequest,
                          replies: tuple[Reply, ...] = ()) -> tuple[Reply, ...]:
        """Queue the conversation and tell the customer where they stand; returns the replies."""
        now = self.clock()
        history = await self.tickets.customer_history(conversation.channel, conversation.user_id)
        earlier = [t for t in history if t.conversation_id != conversation.id or not t.open]
        after_hours = not self.hours.is_open(now)
        context = {
            "candidates": candidates_json(request.candidates),
            "profile": conversation.profile.to_json(),
            "earlier": [{"id": t.id, "reason": t.reason, "status": t.status, "created_at": t.created_at,
                         "summary": t.summary, "rating": t.rating or None} for t in earlier[-5:]],
            "handoff_at": now,
        }
        ticket, created = await self.tickets.open(
            conversation, request, after_hours=after_hours, context=context,
            summary=summarize(conversation, request, len(earlier)))
        if created:
            log.info("ticket %s opened for %s (%s)", ticket.id, conversation.id, request.reason)
            await self.events.publish("ticket", ticket=ticket.to_json(), change="opened")
        language = conversation.language
        if after_hours:
            apology = say("complaint_apology", language) if request.reason == "complaint" else ""
            when = self.hours.describe_next_open(now, language)
            return (Reply(apology + say("after_hours", language, when=when)),)
        position = await self.tickets.position(ticket.id) or 1
        wait = await self.estimate(position)
        await self.tickets.set_fields(ticket.id, last_position=str(position), last_position_at=repr(now))
        decision = Decision(Action.HANDOFF, language, "handoff", reason=request.reason, detail=request.detail)
        reply, _ = handoff_handler.start(decision, HandoffConfig(expected_wait_minutes=wait))
        queue_line = say("queue_position", language, position=position, wait=wait)
        return (Reply(reply.text + "\n" + queue_line), *replies[1:])

    async def customer_wrote(self, conversation: Conversation, line: TranscriptLine) -> None:
        ticket = await self.tickets.open_for(conversation.id)
        if ticket is None:  # a worker died between saving the handoff and queueing it: queue it now
            request = conversation.handoff or HandoffRequest("human_request", "reopened: no open ticket found")
            await self.open_ticket(conversation, request)
            ticket = await self.tickets.open_for(conversation.id)
        if ticket is not None:
            await self.events.publish("message", ticket_id=ticket.id, owner=ticket.owner,
                                      conversation_id=conversation.id, line=line_json(line))

    async def cancelled(self, conversation: Conversation) -> None:
        ticket = await self.tickets.open_for(conversation.id)
        if ticket is not None and await self.tickets.close(ticket, "cancelled"):
            log.info("ticket %s cancelled by the customer", ticket.id)
            await self.events.publish("ticket", ticket_id=ticket.id, change="cancelled")
            self._soon(self.announce_positions())

    async def survey_answer(self, conversation: Conversation, line: TranscriptLine) -> SurveyTurn | None:
        """Read a message after "resolved" as the rating / comment, or None to let the bot answer."""
        raw = await self.store.redis.get(keys.agent_survey(conversation.id))
        if raw is None:
            return None
        survey = json.loads(raw)
        ticket_id, language = survey["ticket"], conversation.language
        if survey["stage"] == "rating":
            rating = parse_rating(line.text)
            if rating is None:
                await self.store.redis.delete(keys.agent_survey(conversation.id))
                return None
            await self.tickets.set_fields(ticket_id, rating=str(rating), rated_at=repr(self.clock()))
            await self.store.redis.xadd(keys.agent_ratings(), {
                "ticket": ticket_id, "agent": survey.get("agent", ""), "rating": str(rating),
                "channel": conversation.channel, "at": repr(self.clock())})
            ttl = max(60, int(self.config.survey_hours * 3600))
            await self.store.redis.set(keys.agent_survey(conversation.id),
                                       json.dumps({**survey, "stage": "comment"}), ex=ttl)
            await self.events.publish("rating", ticket_id=ticket_id, rating=rating, agent=survey.get("agent", ""))
            return SurveyTurn((ask_comment(language),), ConversationState.CLOSED)
        await self.store.redis.delete(keys.agent_survey(conversation.id))
        if not is_no_comment(line.text):
            await self.tickets.set_fields(ticket_id, comment=line.text[:1000])
            await self.events.publish("rating", ticket_id=ticket_id, comment=line.text[:1000])
        return SurveyTurn((Reply(say("survey_thanks", language)),), ConversationState.BOT)

    # ----- queue information -------------------------------------------------------------------

    async def online_agents(self) -> int:
        return int(await self.store.redis.zcount(keys.agent_presence(), self.clock() - PRESENCE_SECONDS, "+inf"))

    async def mark_online(self, agent: str) -> None:
        await self.store.redis.zadd(keys.agent_presence(), {agent: self.clock()})

    async def estimate(self, position: int) -> int:
        """Rough minutes until a human answers the ``position``-th waiting customer."""
        agents = max(1, await self.online_agents())
        return max(1, math.ceil(position * self.config.minutes_per_ticket / agents))

    async def announce_positions(self) -> None:
        """Tell waiting customers who moved up; at most once per ``queue_update_seconds`` each."""
        if not self.hours.is_open(self.clock()):
            return
        for index, ticket in enumerate(await self.tickets.queued()):
            if index >= 20:
                break
            position = index + 1
            data = await self.store.redis.hmget(keys.agent_ticket(ticket.id), ["last_position", "last_position_at"])
            last, last_at = int(data[0] or 0), float(data[1] or 0)
            if last and position >= last:
                continue
            if self.clock() - last_at < self.config.queue_update_seconds:
                continue
            await self.tickets.set_fields(ticket.id, last_position=str(position), last_position_at=repr(self.clock()))
            wait = await self.estimate(position)
            try:
                await self._tell(ticket, _queue_moved(position, wait), kind="queue_update")
            except (BadRequest, *REDIS_ERRORS) as exc:
                log.info("queue update for %s not sent: %s", ticket.id, exc)

    def _soon(self, work: Any) -> None:
        """Run after the current request (and its conversation lock) is done."""
        task: asyncio.Task[None] = asyncio.ensure_future(work)
        self._background.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._background.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("background desk work failed: %s", task.exception())

    async def idle(self) -> None:
        """Wait for background notices (tests, shutdown)."""
        while self._background:
            await asyncio.gather(*list(self._background), return_exceptions=True)

    # ----- console side ------------------------------------------------------------------------

    async def _ticket(self, ticket_id: str) -> Ticket:
        ticket = await self.tickets.get(ticket_id)
        if ticket is None:
            raise BadRequest(f"no ticket {ticket_id}", status=404)
        return ticket

    def _owned(self, ticket: Ticket, agent: Agent) -> None:
        if ticket.status != "claimed":
            raise BadRequest(f"ticket {ticket.id} is {ticket.status}, not claimed", status=409)
        if ticket.owner != agent.name and not agent.admin:
            raise BadRequest(f"ticket {ticket.id} belongs to {ticket.owner}", status=403)

    async def _tell(self, ticket: Ticket, make: Callable[[str], Reply], *, role: Role = Role.SYSTEM,
                    state: ConversationState | None = None, agent: str = "", kind: str = "",
                    strict: bool = False, agent_name: str = "") -> tuple[TranscriptLine, str]:
        """Save a message to the customer's transcript (optionally changing who is responsible)
        and deliver it on their channel.  ``strict``: a delivery failure is raised to the agent.
        Returns the line and, if the channel had to hold it back, why."""
        async with self.store.conversation_lock(ticket.conversation_id):
            line, conv, reply = await self._write(ticket, make, role=role, state=state, agent=agent, kind=kind,
                                                  agent_name=agent_name)
        deferred = await self._publish_and_deliver(ticket, line, conv, reply, strict=strict)
        return line, deferred

    async def _write(self, ticket: Ticket, make: Callable[[str], Reply], *, role: Role = Role.SYSTEM,
                     state: ConversationState | None = None, agent: str = "",
                     kind: str = "", agent_name: str = "") -> tuple[TranscriptLine, Conversation, Reply]:
        """The transcript half of :meth:`_tell`; the caller holds the conversation lock."""
        conv = await self.store.load_conversation(ticket.conversation_id)
        if conv is None:
            raise BadRequest("the conversation has expired", status=410)
        reply = make(conv.language)
        meta: dict[str, Any] = {"kind": kind} if kind else {}
        if agent:
            meta["agent"] = agent
        if agent_name:
            meta["agent_name"] = agent_name  # the display name the customer sees
        if reply.suggestions:
            meta["suggestions"] = [{"label": s.label, "payload": s.payload} for s in reply.suggestions]
        line = TranscriptLine(role, reply.text, self.clock(), meta)
        changes: dict[str, Any] = {"updated_at": line.at}
        if state is not None:
            changes["state"] = state
            if state is ConversationState.BOT:
                changes.update(handoff=None, failures=0)
        conv = conv.evolve(**changes)
        await self.store.save_conversation(conv, [line])
        return line, conv, reply

    async def _publish_and_deliver(self, ticket: Ticket, line: TranscriptLine, conv: Conversation, reply: Reply,
                                   *, strict: bool) -> str:
        await self.events.publish("message", ticket_id=ticket.id, owner=ticket.owner,
                                  conversation_id=ticket.conversation_id, line=line_json(line))
        return await self._deliver(ticket, conv, (reply,), strict=strict)

    async def _deliver(self, ticket: Ticket, conv: Conversation, replies: Sequence[Reply], *, strict: bool) -> str:
        """Push replies through the customer's channel; "" when sent, else why they wait.

        A channel that queues (WeChat outside its 48-hour window) raises DeliveryDeferred: the
        message is kept and goes out later, so the agent is told, not failed.  Anything else is
        a failure: recorded on the ticket, and raised to the agent when ``strict``."""
        channel = self.channels.get(conv.channel)
        try:
            if channel is None:
                raise RuntimeError(f"channel {conv.channel!r} is not running in this server")
            await channel.deliver(conv, replies)
        except DeliveryDeferred as exc:
            message = f"not sent yet: {exc}"
            await self.tickets.add_note(ticket.id, "system", message, kind="delivery_deferred")
            await self.events.publish("delivery_failed", ticket_id=ticket.id, owner=ticket.owner, error=message,
                                      deferred=True)
            return message
        except Exception as exc:
            if isinstance(exc, REDIS_ERRORS) and not strict:
                raise
            message = f"delivery to {conv.channel} failed: {exc}"
            log.warning("ticket %s: %s", ticket.id, message)
            await self.tickets.add_note(ticket.id, "system", message, kind="delivery_failed")
            await self.events.publish("delivery_failed", ticket_id=ticket.id, owner=ticket.owner, error=message)
            if strict:
                raise DeliveryFailed(message) from exc
        return ""

    async def claim(self, ticket_id: str, agent: Agent) -> Ticket:
        ticket = await self._ticket(ticket_id)
        async with self.store.conversation_lock(ticket.conversation_id):
            if not await self.tickets.claim(ticket_id, agent.name):
                current = await self._ticket(ticket_id)
                who = f" by {current.owner}" if current.owner else ""
                raise BadRequest(f"ticket {ticket_id} is already {current.status}{who}", status=409)
            ticket = await self._ticket(ticket_id)
            written = await self._write(ticket, lambda lang: Reply(say("agent_joined", lang, agent=agent.shown)),
                                        state=ConversationState.AGENT, kind="agent_joined")
        await self.events.publish("ticket", ticket=ticket.to_json(), change="claimed")
        await self._publish_and_deliver(ticket, *written, strict=False)
        self._soon(self.announce_positions())
        return ticket

    async def send(self, ticket_id: str, agent: Agent, text: str) -> tuple[TranscriptLine, str]:
        """The agent's message to the customer; returns the line and why it waits, if it does."""
        text = text.strip()
        if not text or len(text) > MAX_MESSAGE:
            raise BadRequest(f"a message is 1-{MAX_MESSAGE} characters")
        ticket = await self._ticket(ticket_id)
        self._owned(ticket, agent)
        return await self._tell(ticket, lambda lang: Reply(text), role=Role.AGENT, agent=agent.name,
                                agent_name=agent.shown, state=ConversationState.AGENT, strict=True)

    async def typing(self, ticket_id: str, agent: Agent) -> None:
        """Show "the agent is typing" in the customer's chat (web chat only; it lapses by itself)."""
        ticket = await self._ticket(ticket_id)
        self._owned(ticket, agent)
        await self.store.set_typing(ticket.conversation_id, self.typing_seconds)

    async def note(self, ticket_id: str, agent: Agent, text: str) -> dict[str, Any]:
        text = text.strip()
        if not text or len(text) > MAX_MESSAGE:
            raise BadRequest(f"a note is 1-{MAX_MESSAGE} characters")
        ticket = await self._ticket(ticket_id)
        note = await self.tickets.add_note(ticket.id, agent.name, text)
        await self.events.publish("note", ticket_id=ticket.id, note=note)
        return note

    async def transfer(self, ticket_id: str, agent: Agent, to: Agent) -> Ticket:
        ticket = await self._ticket(ticket_id)
        self._owned(ticket, agent)
        if to.name == ticket.owner:
            raise BadRequest(f"{to.name} already owns ticket {ticket_id}", status=409)
        if not await self.tickets.transfer(ticket_id, to.name, "" if agent.admin else agent.name):
            raise BadRequest(f"ticket {ticket_id} changed meanwhile; reload", status=409)
        await self.tickets.add_note(ticket_id, agent.name, f"transferred {ticket.owner} → {to.name}", kind="transfer")
        ticket = await self._ticket(ticket_id)
        await self.events.publish("ticket", ticket=ticket.to_json(), change="transferred", to=to.name)
        await self._tell(ticket, lambda lang: Reply(say("agent_transferred", lang, agent=to.name)),
                         kind="agent_transferred")
        return ticket

    async def resolve(self, ticket_id: str, agent: Agent) -> Ticket:
        """Close the ticket, give the conversation back to the bot and ask for a rating."""
        return await self._close(ticket_id, agent, "resolved", ask, ConversationState.CLOSED, "survey")

    async def hand_back(self, ticket_id: str, agent: Agent) -> Ticket:
        """Return the conversation to the bot without a survey (e.g. the customer only had an FAQ)."""
        return await self._close(ticket_id, agent, "handed_back", lambda lang: Reply(say("handed_back", lang)),
                                 ConversationState.BOT, "handed_back")

    async def _close(self, ticket_id: str, agent: Agent, status: str, make: Callable[[str], Reply],
                     state: ConversationState, kind: str) -> Ticket:
        ticket = await self._ticket(ticket_id)
        self._owned(ticket, agent)
        async with self.store.conversation_lock(ticket.conversation_id):
            if not await self.tickets.close(ticket, status, "" if agent.admin else agent.name):
                raise BadRequest(f"ticket {ticket_id} changed meanwhile; reload", status=409)
            if status == "resolved":
                ttl = max(60, int(self.config.survey_hours * 3600))
                survey = {"ticket": ticket.id, "stage": "rating", "agent": ticket.owner}
                await self.store.redis.set(keys.agent_survey(ticket.conversation_id), json.dumps(survey), ex=ttl)
            ticket = await self._ticket(ticket_id)
            written = await self._write(ticket, make, state=state, kind=kind)
        await self.events.publish("ticket", ticket=ticket.to_json(), change=status)
        await self._publish_and_deliver(ticket, *written, strict=False)
        return ticket

    async def follow_up(self, ticket_id: str, agent: Agent, minutes: float, text: str) -> dict[str, Any]:
        """Remember a promise to report back; the agent is reminded when it is due (rule 5)."""
        if not 0 < minutes <= 60 * 24 * 30:
            raise BadRequest("'minutes' must be between 0 and 43200")
        ticket = await self._ticket(ticket_id)
        due = self.clock() + minutes * 60
        reminder = {"ticket_id": ticket.id, "agent": agent.name, "text": text.strip()[:500], "due": due}
        await self.store.redis.zadd(keys.agent_followups(), {json.dumps(reminder, ensure_ascii=False): due})
        await self.tickets.add_note(ticket.id, agent.name, f"follow-up due in {minutes:g} min: {reminder['text']}",
                                    kind="follow_up")
        await self.events.publish("note", ticket_id=ticket.id)
        return reminder

    async def sla_sweep(self) -> dict[str, int]:
        """Escalate tickets waiting too long and fire due follow-up reminders; one worker at a time."""
        redis = self.store.redis
        lease = max(1, int(self.config.sla_check_seconds))
        if not await redis.set(keys.agent_sla_lock(), "1", nx=True, ex=lease):
            return {"escalated": 0, "reminded": 0}
        now = self.clock()
        escalated = reminded = 0
        if self.hours.is_open(now):
            limit = self.config.unclaimed_sla_minutes * 60
            shift = self.hours.shift_started(now)
            for ticket in await self.tickets.queued():
                waited = now - max(ticket.created_at, shift)
                if not ticket.escalated_at and waited >= limit and await self.tickets.mark_escalated(ticket.id):
                    escalated += 1
                    minutes = int(waited // 60)
                    await self.tickets.add_note(ticket.id, "system", f"escalated: unclaimed for {minutes} min",
                                                kind="escalated")
                    fresh = await self.tickets.get(ticket.id)
                    await self.events.publish("escalated", ticket=(fresh or ticket).to_json(), minutes=minutes)
        due: list[str] = await redis.zrangebyscore(keys.agent_followups(), "-inf", now)  # type: ignore[assignment]
        for raw in due:
            if await redis.zrem(keys.agent_followups(), raw):  # only one worker wins each reminder
                reminded += 1
                reminder = json.loads(raw)
                await self.events.publish("reminder", **reminder)
        return {"escalated": escalated, "reminded": reminded}

    async def pending_reminders(self, agent: str) -> list[dict[str, Any]]:
        rows: list[str] = await self.store.redis.zrange(keys.agent_followups(), 0, -1)  # type: ignore[assignment]
        return [r for r in (json.loads(raw) for raw in rows) if r["agent"] == agent]

    async def ratings(self, limit: int = 100) -> dict[str, Any]:
        rows: list[tuple[str, dict[str, str]]] = await self.store.redis.xrevrange(  # type: ignore[assignment]
            keys.agent_ratings(), count=limit)
        items = [{"id": entry_id, **fields} for entry_id, fields in rows]
        scores = [int(item["rating"]) for item in items]
        return {"ratings": items, "count": len(scores),
                "average": round(sum(scores) / len(scores), 2) if scores else None}

    async def inbox(self, agent: Agent) -> dict[str, Any]:
        now = self.clock()
        queued = []
        for index, ticket in enumerate(await self.tickets.queued()):
            queued.append({**ticket.to_json(), "position": index + 1, "waiting_seconds": int(now - ticket.created_at)})
        mine: list[dict[str, Any]] = []
        others: list[dict[str, Any]] = []
        for ticket in await self.tickets.active():
            (mine if ticket.owner == agent.name else others).append(ticket.to_json())
        return {"queued": queued, "mine": mine, "others": others,
                "service_open": self.hours.is_open(now), "online_agents": await self.online_agents(),
                "reminders": await self.pending_reminders(agent.name)}

    async def export(self, ticket_id: str) -> str:
        """The ticket's conversation as plain text for records or escalation by e-mail; phone and
        ID numbers are masked when ``security.mask_exports`` is on."""
        ticket = await self._ticket(ticket_id)
        conv = await self.store.load_conversation(ticket.conversation_id)
        lines = [f"Ticket {ticket.id} · {ticket.channel} · {ticket.reason}"]
        for line in conv.transcript if conv is not None else ():
            stamp = datetime.fromtimestamp(line.at, tz=self.hours.zone).strftime("%Y-%m-%d %H:%M:%S")
            who = line.meta.get("agent") or line.role.value
            lines.append(f"{stamp}  {who}: {line.text}")
        text = "\n".join(lines) + "\n"
        return mask_pii(text) if self.mask_exports else text

    async def detail(self, ticket_id: str) -> dict[str, Any]:
        ticket = await self._ticket(ticket_id)
        conv = await self.store.load_conversation(ticket.conversation_id)
        history = await self.tickets.customer_history(ticket.channel, ticket.user_id)
        return {
            "ticket": ticket.to_json(),
            "position": await self.tickets.position(ticket.id),
            "context": ticket.context,
            "conversation": None if conv is None else {
                "id": conv.id, "state": conv.state.value, "language": conv.language,
                "profile": conv.profile.to_json(),
            },
            "transcript": [] if conv is None else [line_json(line) for line in conv.transcript],
            "notes": await self.tickets.notes(ticket.id),
            "earlier_tickets": [t.to_json() for t in history if t.id != ticket.id],
        }
