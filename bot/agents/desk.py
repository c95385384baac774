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
import fnmatch
import json
import logging
import math
import re
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from bot.agents.auth import Agent, AgentDirectory
from bot.agents.events import EventBus
from bot.agents.hours import ServiceHours
from bot.agents.packet import build_packet
from bot.agents.survey import ask, ask_comment, is_no_comment, parse_rating
from bot.agents.tickets import PRIORITY, Ticket, candidates_json, mask_phones, summarize
from bot.channels.base import Channel, DeliveryDeferred
from bot.config import AgentsConfig, Config, HandoffConfig
from bot.desk import SurveyTurn
from bot.errors import BadRequest, Conflict, DeliveryFailed, DomainError, Forbidden, Gone, InvalidInput, NotFound
from bot.privacy import mask_pii
from bot.review import AGENT, AnswerReview, answers
from bot.storage.client import REDIS_ERRORS
from bot.storage.conversations import Store
from bot.storage.desk import DeskRecords
from bot.storage.tickets import TicketStore
from bot.types import (
    Conversation,
    ConversationState,
    HandoffRequest,
    Reply,
    Role,
    TranscriptLine,
)
from handlers import handoff as handoff_handler
from handlers.texts import say
from intents.escalation import detect_escalation
from knowledge.schema import KnowledgeBase

log = logging.getLogger(__name__)
PRESENCE_SECONDS = 90  # a console that has not been heard from this long is offline
MAX_MESSAGE = 4000
STATUSES = ("online", "busy", "away")  # what an agent picks; "offline" = logged out or not connected
ACK_QUIET_SECONDS = 30.0  # while waiting, at most one "it reached the agent" per this many seconds
_CONTACT = re.compile(r"(?<!\d)1[3-9]\d{9}(?!\d)|[\w.+-]+@[\w-]+(?:\.[\w-]+)+|(?<!\d)0\d{2,3}-?\d{7,8}(?!\d)")


def _queue_moved(position: int, wait: int | None) -> Callable[[str], Reply]:
    if wait is None:  # nobody online: the place is true, a wait would be a guess
        return lambda language: Reply(say("queue_moved_no_agent", language, position=position))
    return lambda language: Reply(say("queue_moved", language, position=position, wait=wait))


def _said(key: str, **values: Any) -> Callable[[str], Reply]:
    return lambda language: Reply(say(key, language, **values))


def line_json(line: TranscriptLine) -> dict[str, Any]:
    return {"seq": line.seq, "role": line.role.value, "text": line.text, "at": line.at,
            "agent": line.meta.get("agent", ""), "kind": line.meta.get("kind", ""),
            "attachments": line.meta.get("attachments", [])}


class HumanDesk:
    """Tickets, queue and survey over the shared store; one per worker, stateless between calls."""

    def __init__(self, store: Store, config: Config, clock: Callable[[], float] = time.time, *,
                 channels: Mapping[str, Channel] | None = None,
                 knowledge: Callable[[], KnowledgeBase] | None = None) -> None:
        """``channels``: the running channels by name, to deliver agents' messages (a registry
        the composition root fills once it has built them); ``knowledge``: the live knowledge
        base, so the console can offer the bot's candidates as answers."""
        self.store = store
        self.config: AgentsConfig = config.agents
        self.typing_seconds = config.channels.web.typing_seconds
        self.hours = ServiceHours(config.service_hours)
        self.mask_exports = config.security.mask_exports
        self.clock = clock
        self.tickets = TicketStore(store.redis, clock)
        self.records = DeskRecords(store.redis)
        self.events = EventBus(store.redis)
        self.directory = AgentDirectory(store.redis, config.agents)
        self.channels: Mapping[str, Channel] = channels if channels is not None else {}
        self.knowledge = knowledge
        self.review = AnswerReview(store, clock)
        self._background: set[asyncio.Task[None]] = set()

    def candidate_answers(self, ticket: Ticket) -> list[dict[str, Any]]:
        """The bot's candidates with their answer text in the customer's language ("send this")."""
        kb = self.knowledge() if self.knowledge is not None else None
        found = []
        for candidate in ticket.context.get("candidates", []):
            entry = kb.get(candidate["entry_id"]) if kb is not None else None
            found.append({**candidate, "answer": entry.answer_in(ticket.language) if entry is not None else ""})
        return found

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
            "packet": build_packet(conversation, request),
        }
        online = 0 if after_hours else await self.online_agents()
        ticket, created = await self.tickets.open(
            conversation, request, after_hours=after_hours, context=context,
            summary=summarize(conversation, request, len(earlier)), group=self.route(conversation, request),
            left_message=after_hours or online == 0)
        if created:
            log.info("ticket %s opened for %s (%s)", ticket.id, conversation.id, request.reason)
            await self.events.publish("ticket", ticket=ticket.to_json(), change="opened")
            self._soon(self.assign_waiting())
        language = conversation.language
        apology = {"complaint": say("complaint_apology", language),
                   "action_failed": say("action_failed_sorry", language)}.get(request.reason, "")
        if after_hours:
            when = self.hours.describe_next_open(now, language)
            return (Reply(apology + say("after_hours", language, when=when)),)
        position = await self.tickets.position(ticket.id) or 1
        await self.tickets.set_fields(ticket.id, last_position=str(position), last_position_at=repr(now))
        if online == 0:  # open, but nobody is there: say so, take a message (service rule 6)
            return (Reply(apology + say("no_agent_online", language, position=position)),)
        wait = await self.estimate(position)
        reply = handoff_handler.reply(request.reason, language, HandoffConfig(expected_wait_minutes=wait))
        queue_line = say("queue_position", language, position=position, wait=wait)
        return (Reply(reply.text + "\n" + queue_line), *replies[1:])

    # ----- the customer across channels --------------------------------------------------------

    async def _card(self, identity: str) -> tuple[str, dict[str, Any]]:
        customer_id, stored = await self.records.card(identity)
        card: dict[str, Any] = stored if stored is not None else {
            "name": "", "identities": [identity], "attributes": {}}
        return customer_id, card

    async def customer(self, channel: str, user_id: str) -> dict[str, Any]:
        """One customer's profile across their linked channels: name, channel ids, every ticket
        with its outcome and rating, open follow-ups and the attributes agents noted."""
        customer_id, card = await self._card(f"{channel}:{user_id}")
        tickets: list[Ticket] = []
        for identity in card["identities"]:
            ident_channel, _, ident_user = identity.partition(":")
            tickets += await self.tickets.customer_history(ident_channel, ident_user)
        tickets.sort(key=lambda t: t.created_at, reverse=True)
        ids = {t.id for t in tickets}
        followups = [r for r in await self.records.follow_ups() if r["ticket_id"] in ids]
        name = card.get("name") or next((t.customer_name for t in tickets if t.customer_name), "")
        ratings = [t.rating for t in tickets if t.rating]
        return {"id": customer_id, "name": name, "identities": card["identities"],
                "attributes": card.get("attributes", {}), "followups": followups,
                "tickets": [t.to_json() for t in tickets],
                "csat": round(sum(ratings) / len(ratings), 2) if ratings else None}

    async def update_customer(self, channel: str, user_id: str, *, name: str | None = None,
                              attributes: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Set the name and free-form attributes (a value of null removes one)."""
        customer_id, card = await self._card(f"{channel}:{user_id}")
        if name is not None:
            if len(name) > 64:
                raise InvalidInput("'name' is at most 64 characters")
            card["name"] = name.strip()
        if attributes is not None:
            current: dict[str, str] = dict(card.get("attributes", {}))
            for key, value in attributes.items():
                if not isinstance(key, str) or not 0 < len(key.strip()) <= 30:
                    raise InvalidInput("an attribute name is 1-30 characters")
                if value is None:
                    current.pop(key.strip(), None)
                elif isinstance(value, str | int | float) and not isinstance(value, bool) and len(str(value)) <= 200:
                    current[key.strip()] = str(value)
                else:
                    raise InvalidInput(f"attribute {key!r}: a value is text of at most 200 characters, "
                                       "or null to remove")
            if len(current) > 30:
                raise InvalidInput("at most 30 attributes per customer")
            card["attributes"] = current
        await self.records.save_card(customer_id, card)
        return await self.customer(channel, user_id)

    async def link_customer(self, channel: str, user_id: str, other: str) -> dict[str, Any]:
        """The same person on another channel ("telegram:12345"): one profile, all their tickets."""
        ident_channel, sep, ident_user = other.partition(":")
        if not sep or not ident_channel or not ident_user or len(other) > 200:
            raise InvalidInput("'identity' must be channel:user_id, e.g. telegram:12345")
        customer_id, card = await self._card(f"{channel}:{user_id}")
        other_id, other_card = await self._card(other)
        if other_id == customer_id:
            raise Conflict(f"{other} is already this customer")
        merged = list(dict.fromkeys([*card["identities"], *other_card["identities"]]))
        card["identities"] = merged
        card["attributes"] = {**other_card.get("attributes", {}), **card.get("attributes", {})}
        card["name"] = card.get("name") or other_card.get("name", "")
        await self.records.link(customer_id, card, merged, other_id)
        return await self.customer(channel, user_id)

    async def accepts(self, conversation: Conversation) -> bool:
        return not await self.records.is_blocked(f"{conversation.channel}:{conversation.user_id}")

    async def block(self, ticket_id: str, agent: Agent, reason: str) -> Ticket:
        """Put the ticket's customer on the blocked list (abuse) and close the ticket: the bot
        keeps answering them, but no handoff reaches an agent until an admin unblocks them."""
        reason = reason.strip()
        if not reason or len(reason) > 200:
            raise InvalidInput("'reason' must say why, in at most 200 characters")
        ticket = await self._ticket(ticket_id)
        if ticket.status == "claimed":
            self._owned(ticket, agent)
        record = {"name": ticket.customer_name, "reason": reason, "by": agent.name, "at": self.clock(),
                  "channel": ticket.channel, "user_id": ticket.user_id}
        await self.records.block(f"{ticket.channel}:{ticket.user_id}", record)
        await self.tickets.add_note(ticket.id, agent.name, f"customer blocked: {reason}", kind="blocked")
        log.info("customer %s:%s blocked by %s", ticket.channel, ticket.user_id, agent.name)
        if ticket.open:
            async with self.store.conversation_lock(ticket.conversation_id):
                if await self.tickets.close(ticket, "blocked"):
                    written = await self._write(ticket, _said("handed_back"), state=ConversationState.BOT,
                                                kind="handed_back")
                    await self._publish_and_deliver(ticket, *written, strict=False)
        fresh = await self._ticket(ticket_id)
        await self.events.publish("ticket", ticket=fresh.to_json(), change="blocked")
        self._soon(self.assign_waiting())
        return fresh

    async def blocked(self) -> list[dict[str, Any]]:
        return sorted(await self.records.blocked(), key=lambda r: -float(r["at"]))

    async def unblock(self, lead: Agent, channel: str, user_id: str) -> None:
        if not lead.admin:
            raise Forbidden("admins only")
        if not await self.records.unblock(f"{channel}:{user_id}"):
            raise NotFound(f"{channel}:{user_id} is not blocked")
        log.info("customer %s:%s unblocked by %s", channel, user_id, lead.name)

    def route(self, conversation: Conversation, request: HandoffRequest) -> str:
        """The skill group a new ticket goes to: the first whose languages or entry patterns match."""
        top = request.candidates[0].entry_id if request.candidates else ""
        for group in self.config.groups:
            if conversation.language in group.languages:
                return group.name
            if top and any(fnmatch.fnmatchcase(top, pattern) for pattern in group.entries):
                return group.name
        return ""

    async def while_waiting(self, conversation: Conversation, line: TranscriptLine) -> tuple[Reply, ...]:
        """What a customer who writes while queued is told (the engine saves it with their line).

        An escalation ("我要打12315") moves the ticket up and says so; a phone number or e-mail is
        kept on the ticket for a call back; anything else is confirmed as passed on, at most once
        per ``ACK_QUIET_SECONDS`` so a burst of short lines gets one answer, not five."""
        language = conversation.language
        ticket = await self.tickets.open_for(conversation.id)
        history = [t.text for t in conversation.transcript if t.role is Role.CUSTOMER]
        escalation = detect_escalation(line.text, history[-6:])
        if ticket is not None and escalation is not None and escalation.reason == "complaint":
            raised = await self.tickets.reprioritise(ticket, PRIORITY["complaint"])
            await self.tickets.add_note(ticket.id, "system", f"customer escalated while waiting: {escalation.detail}",
                                        kind="escalated")
            await self.tickets.set_fields(ticket.id, detail=escalation.detail)
            if raised:
                fresh = await self.tickets.get(ticket.id)
                await self.events.publish("ticket", ticket=(fresh or ticket).to_json(), change="raised")
                self._soon(self.assign_waiting())
            position = await self.tickets.position(ticket.id) or 1
            return (Reply(say("complaint_apology", language) + say("waiting_raised", language, position=position)),)
        contact = _CONTACT.search(line.text)
        if ticket is not None and contact is not None:
            await self.tickets.set_fields(ticket.id, contact=contact.group(0))
            fresh = await self.tickets.get(ticket.id)
            await self.events.publish("ticket", ticket=(fresh or ticket).to_json(), change="contact")
            return (Reply(say("contact_noted", language, contact=mask_phones(contact.group(0)))),)
        since = ticket.created_at if ticket is not None else 0.0
        for earlier in reversed(conversation.transcript):
            if earlier.at < since:  # a note from an earlier handoff does not count for this one
                break
            if earlier.role is Role.BOT and earlier.meta.get("kind") in ("waiting_note", "waiting_ack"):
                if line.at - earlier.at < ACK_QUIET_SECONDS:
                    return ()
                return (Reply(say("waiting_ack", language)),)
        return (Reply(say("waiting_note", language)),)

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
        survey = await self.records.survey(conversation.id)
        if survey is None:
            return None
        ticket_id, language = survey["ticket"], conversation.language
        if survey["stage"] == "rating":
            rating = parse_rating(line.text)
            if rating is None:
                await self.records.end_survey(conversation.id)
                return None
            await self.tickets.set_fields(ticket_id, rating=str(rating), rated_at=repr(self.clock()))
            await self.records.add_rating({
                "ticket": ticket_id, "agent": survey.get("agent", ""), "rating": str(rating),
                "channel": conversation.channel, "at": repr(self.clock())})
            ttl = max(60, int(self.config.survey_hours * 3600))
            await self.records.save_survey(conversation.id, {**survey, "stage": "comment"}, ttl)
            await self.events.publish("rating", ticket_id=ticket_id, rating=rating, agent=survey.get("agent", ""))
            return SurveyTurn((ask_comment(language),), ConversationState.CLOSED)
        await self.records.end_survey(conversation.id)
        if not is_no_comment(line.text):
            await self.tickets.set_fields(ticket_id, comment=line.text[:1000])
            await self.events.publish("rating", ticket_id=ticket_id, comment=line.text[:1000])
        return SurveyTurn((Reply(say("survey_thanks", language)),), ConversationState.BOT)

    # ----- queue information -------------------------------------------------------------------

    async def last_seen(self) -> dict[str, float]:
        return await self.records.last_seen()

    async def statuses(self) -> dict[str, dict[str, Any]]:
        """Every agent's presence: what they chose, made "offline" when their console is gone."""
        now = self.clock()
        seen = await self.last_seen()
        chosen = await self.records.chosen_statuses()
        result: dict[str, dict[str, Any]] = {}
        for name in set(seen) | set(chosen):
            data: dict[str, Any] = chosen[name] if name in chosen else {
                "status": "online", "since": seen.get(name, 0.0)}
            alive = seen.get(name, 0.0) >= now - PRESENCE_SECONDS
            status = data["status"] if alive else "offline"
            result[name] = {"status": status, "since": float(data.get("since") or 0), "last_seen": seen.get(name, 0.0)}
        return result

    async def online_agents(self) -> int:
        """Agents who can answer now (online or busy, console connected): the wait estimate's divisor."""
        return sum(1 for p in (await self.statuses()).values() if p["status"] in ("online", "busy"))

    async def mark_online(self, agent: str) -> None:
        """A console heartbeat.  Coming back after a logout counts as choosing "online"."""
        await self.records.heartbeat(agent, self.clock())
        chosen = await self.records.chosen_status(agent)
        if chosen is None or chosen["status"] == "offline":
            await self.set_status(agent, "online")

    async def set_status(self, agent: str, status: str) -> dict[str, Any]:
        """online (gets new chats) · busy (keeps chats, gets none) · away · offline (logout)."""
        if status not in (*STATUSES, "offline"):
            raise InvalidInput(f"'status' must be one of {', '.join(STATUSES)}")
        presence = {"status": status, "since": self.clock()}
        await self.records.choose_status(agent, presence)
        await self.events.publish("presence", agent=agent, **presence)
        if status == "online":
            self._soon(self.assign_waiting())
        return presence

    def limit(self, agent: Agent) -> int:
        """How many chats the agent may hold at once; 0 = unlimited."""
        return agent.max_chats or self.config.max_chats

    async def estimate(self, position: int) -> int:
        """Rough minutes until a human answers the ``position``-th waiting customer."""
        agents = max(1, await self.online_agents())
        return max(1, math.ceil(position * self.config.minutes_per_ticket / agents))

    async def assign_waiting(self) -> int:
        """Hand waiting tickets, in queue order, to online agents below their limit (least busy
        or round robin, within the ticket's skill group); returns how many were assigned.

        Safe from any number of workers at once: each assignment is one Lua script that checks
        the ticket is still waiting and the agent still below their limit."""
        strategy = self.config.auto_assign
        if strategy not in ("least_busy", "round_robin") or not self.hours.is_open(self.clock()):
            return 0
        presence = await self.statuses()
        available = [a for a in await self.directory.all()
                     if not a.disabled and presence.get(a.name, {}).get("status") == "online"]
        if not available:
            return 0
        assigned = 0
        for ticket in await self.tickets.queued():
            candidates = [(a.name, self.limit(a) or 1_000_000) for a in available
                          if not ticket.group or ticket.group in a.groups]
            if not candidates:
                continue
            owner = await self.tickets.assign(ticket.id, candidates, strategy)
            if not owner:
                continue
            assigned += 1
            log.info("ticket %s assigned to %s (%s)", ticket.id, owner, strategy)
            try:
                await self._joined(ticket.id, owner, change="assigned",
                                   shown=next((a.shown for a in available if a.name == owner), ""))
            except (DomainError, BadRequest, *REDIS_ERRORS) as exc:
                log.warning("ticket %s assigned to %s, but the customer was not told: %s", ticket.id, owner, exc)
        if assigned:
            self._soon(self.announce_positions())
        return assigned

    async def return_absent(self) -> int:
        """Re-queue the chats of agents gone longer than ``offline_grace_minutes`` (logged out,
        browser closed or dead), at their old place, telling each customer; returns how many."""
        now = self.clock()
        grace = self.config.offline_grace_minutes * 60
        if grace <= 0:  # switched off: chats stay with their owner
            return 0
        presence = await self.statuses()
        returned = 0
        for ticket in await self.tickets.active():
            state = presence.get(ticket.owner, {"status": "offline", "since": 0.0, "last_seen": 0.0})
            if state["status"] != "offline":
                continue
            gone_at = max(state["last_seen"], state["since"]) if state["since"] else state["last_seen"]
            gone_at = max(gone_at, ticket.claimed_at)
            if now - gone_at < grace or not await self.tickets.requeue(ticket, expected_owner=ticket.owner):
                continue
            returned += 1
            minutes = max(1, int((now - gone_at) // 60))
            await self.tickets.add_note(ticket.id, "system", f"back to the queue: {ticket.owner} offline for "
                                        f"{minutes} min", kind="returned")
            fresh = await self._ticket(ticket.id)
            await self.events.publish("ticket", ticket=fresh.to_json(), change="returned", previous=ticket.owner)
            position = await self.tickets.position(ticket.id) or 1
            try:
                await self._tell(fresh, _said("agent_gone", position=position), state=ConversationState.WAITING,
                                 kind="returned")
            except (DomainError, BadRequest, *REDIS_ERRORS) as exc:
                log.info("return notice for %s not sent: %s", ticket.id, exc)
        if returned:
            await self.assign_waiting()
        return returned

    async def announce_positions(self) -> None:
        """Tell waiting customers who moved up; at most once per ``queue_update_seconds`` each."""
        if not self.hours.is_open(self.clock()):
            return
        online = await self.online_agents()
        for index, ticket in enumerate(await self.tickets.queued()):
            if index >= 20:
                break
            position = index + 1
            last, last_at = await self.tickets.last_position(ticket.id)
            if last and position >= last:
                continue
            if self.clock() - last_at < self.config.queue_update_seconds:
                continue
            await self.tickets.set_fields(ticket.id, last_position=str(position), last_position_at=repr(self.clock()))
            wait = await self.estimate(position) if online else None
            try:
                await self._tell(ticket, _queue_moved(position, wait), kind="queue_update")
            except (DomainError, BadRequest, *REDIS_ERRORS) as exc:
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
            raise NotFound(f"no ticket {ticket_id}")
        return ticket

    def _owned(self, ticket: Ticket, agent: Agent) -> None:
        if ticket.status != "claimed":
            raise Conflict(f"ticket {ticket.id} is {ticket.status}, not claimed")
        if ticket.owner != agent.name and not agent.admin:
            raise Forbidden(f"ticket {ticket.id} belongs to {ticket.owner}")

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
            raise Gone("the conversation has expired")
        reply = make(conv.language)
        meta: dict[str, Any] = {"kind": kind} if kind else {}
        if agent:
            meta["agent"] = agent
        if agent_name:
            meta["agent_name"] = agent_name  # the display name the customer sees
        if reply.suggestions:
            meta["suggestions"] = [{"label": s.label, "payload": s.payload} for s in reply.suggestions]
        line = TranscriptLine(role, reply.text, self.clock(), meta)
        if state is ConversationState.BOT:
            conv = conv.back_to_bot()
        elif state is not None:
            conv = conv.evolve(state=state)
        conv = conv.evolve(updated_at=line.at)
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
        limit = self.limit(agent)
        got = await self.tickets.claim(ticket_id, agent.name, limit)
        if got == -1:
            raise Conflict(f"you already have {limit} chats (your limit); resolve one first")
        if not got:
            current = await self._ticket(ticket_id)
            who = f" by {current.owner}" if current.owner else ""
            raise Conflict(f"ticket {ticket_id} is already {current.status}{who}")
        ticket = await self._joined(ticket.id, agent.name, change="claimed", shown=agent.shown)
        self._soon(self.announce_positions())
        return ticket

    async def _joined(self, ticket_id: str, owner: str, change: str, shown: str = "") -> Ticket:
        """After a claim or an assignment: the customer is told who joined (by the agent's display
        name, e.g. 人工客服小李已接入, never the login), consoles are told."""
        ticket = await self._ticket(ticket_id)
        shown = shown or await self.directory.display_name(owner) or owner
        async with self.store.conversation_lock(ticket.conversation_id):
            written = await self._write(ticket, _said("agent_joined", agent=shown),
                                        state=ConversationState.AGENT, kind="agent_joined")
        await self.events.publish("ticket", ticket=ticket.to_json(), change=change)
        await self._publish_and_deliver(ticket, *written, strict=False)
        return ticket

    async def send(self, ticket_id: str, agent: Agent, text: str) -> tuple[TranscriptLine, str]:
        """The agent's message to the customer; returns the line and why it waits, if it does."""
        text = text.strip()
        if not text or len(text) > MAX_MESSAGE:
            raise InvalidInput(f"a message is 1-{MAX_MESSAGE} characters")
        ticket = await self._ticket(ticket_id)
        self._owned(ticket, agent)
        sent = await self._tell(ticket, lambda lang: Reply(text), role=Role.AGENT, agent=agent.name,
                                agent_name=agent.shown, state=ConversationState.AGENT, strict=True)
        if not ticket.first_response_at:  # the team view's first-response time
            await self.tickets.first_response(ticket.id, self.clock())
        return sent

    async def typing(self, ticket_id: str, agent: Agent) -> None:
        """Show "the agent is typing" in the customer's chat (web chat only; it lapses by itself)."""
        ticket = await self._ticket(ticket_id)
        self._owned(ticket, agent)
        await self.store.set_typing(ticket.conversation_id, self.typing_seconds)

    async def note(self, ticket_id: str, agent: Agent, text: str) -> dict[str, Any]:
        text = text.strip()
        if not text or len(text) > MAX_MESSAGE:
            raise InvalidInput(f"a note is 1-{MAX_MESSAGE} characters")
        ticket = await self._ticket(ticket_id)
        note = await self.tickets.add_note(ticket.id, agent.name, text)
        await self.events.publish("note", ticket_id=ticket.id, note=note)
        return note

    async def transfer(self, ticket_id: str, agent: Agent, to: Agent) -> Ticket:
        ticket = await self._ticket(ticket_id)
        self._owned(ticket, agent)
        if to.name == ticket.owner:
            raise Conflict(f"{to.name} already owns ticket {ticket_id}")
        if to.disabled:
            raise Conflict(f"{to.name} is disabled")
        limit = self.limit(to)
        got = await self.tickets.transfer(ticket_id, to.name, "" if agent.admin else agent.name, limit)
        if got == -1:
            raise Conflict(f"{to.name} already has {limit} chats (their limit)")
        if not got:
            raise Conflict(f"ticket {ticket_id} changed meanwhile; reload")
        await self.tickets.add_note(ticket_id, agent.name, f"transferred {ticket.owner} → {to.name}", kind="transfer")
        ticket = await self._ticket(ticket_id)
        await self.events.publish("ticket", ticket=ticket.to_json(), change="transferred", to=to.name)
        await self._tell(ticket, lambda lang: Reply(say("agent_transferred", lang, agent=to.shown)),
                         kind="agent_transferred")
        return ticket

    def group_names(self) -> list[str]:
        return [g.name for g in self.config.groups if g.name]

    async def transfer_to_group(self, ticket_id: str, agent: Agent, group: str) -> Ticket:
        """Back to the queue for a skill group (售后, English...): the next free agent of that group
        gets it, at the customer's old place in the queue."""
        if group not in self.group_names():
            raise NotFound(f"no group {group!r}; groups: {', '.join(self.group_names()) or 'none configured'}")
        ticket = await self._ticket(ticket_id)
        self._owned(ticket, agent)
        if not await self.tickets.requeue(ticket, "" if agent.admin else agent.name, group=group):
            raise Conflict(f"ticket {ticket_id} changed meanwhile; reload")
        await self.tickets.add_note(ticket_id, agent.name, f"transferred {ticket.owner} → group {group}",
                                    kind="transfer")
        ticket = await self._ticket(ticket_id)
        await self.events.publish("ticket", ticket=ticket.to_json(), change="transferred", group=group)
        await self._tell(ticket, _said("group_transferred", group=group), state=ConversationState.WAITING,
                         kind="agent_transferred")
        await self.assign_waiting()
        return await self._ticket(ticket_id)

    async def reassign(self, ticket_id: str, lead: Agent, to: Agent) -> Ticket:
        """A team lead moves a waiting or claimed ticket to an agent."""
        if not lead.admin:
            raise Forbidden("admins only")
        ticket = await self._ticket(ticket_id)
        if ticket.status == "queued":
            return await self.claim(ticket_id, to)
        return await self.transfer(ticket_id, lead, to)

    async def resolve(self, ticket_id: str, agent: Agent, wrapup: Mapping[str, Any] | None = None) -> Ticket:
        """Close the ticket with its wrap-up (会话小结), give the conversation back to the bot and
        ask for a rating."""
        clean = self.check_wrapup(wrapup or {})
        if clean:
            ticket = await self._ticket(ticket_id)
            self._owned(ticket, agent)
            await self.tickets.set_fields(ticket_id, wrapup=json.dumps(clean, ensure_ascii=False))
        return await self._close(ticket_id, agent, "resolved", ask, ConversationState.CLOSED, "survey")

    def check_wrapup(self, wrapup: Mapping[str, Any]) -> dict[str, Any]:
        """{category, tags, outcome}, each optional; one clear line for what is wrong."""
        unknown = set(wrapup) - {"category", "tags", "outcome"}
        if unknown:
            raise InvalidInput(f"wrap-up: unknown field(s) {', '.join(sorted(unknown))}; use category, tags, outcome")
        category = wrapup.get("category", "")
        if not isinstance(category, str) or len(category) > 60:
            raise InvalidInput("wrap-up 'category' must be text of at most 60 characters")
        tags = wrapup.get("tags", [])
        if isinstance(tags, str):
            tags = [t for t in re.split(r"[,，、]+", tags) if t.strip()]
        if not isinstance(tags, list) or len(tags) > 10 or \
                not all(isinstance(t, str) and 0 < len(t.strip()) <= 30 for t in tags):
            raise InvalidInput("wrap-up 'tags' must be up to 10 words of at most 30 characters each")
        outcome = wrapup.get("outcome", "")
        if not isinstance(outcome, str) or len(outcome) > 200:
            raise InvalidInput("wrap-up 'outcome' must be one line of at most 200 characters")
        clean: dict[str, Any] = {"category": category.strip(), "tags": [t.strip() for t in tags],
                                 "outcome": outcome.strip()}
        return clean if any(clean.values()) else {}

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
                raise Conflict(f"ticket {ticket_id} changed meanwhile; reload")
            if status == "resolved":
                ttl = max(60, int(self.config.survey_hours * 3600))
                survey = {"ticket": ticket.id, "stage": "rating", "agent": ticket.owner}
                await self.records.save_survey(ticket.conversation_id, survey, ttl)
            ticket = await self._ticket(ticket_id)
            written = await self._write(ticket, make, state=state, kind=kind)
            await self.tickets.set_fields(ticket_id, text=_searchable(written[1], ticket.created_at))
        await self.events.publish("ticket", ticket=ticket.to_json(), change=status)
        await self._publish_and_deliver(ticket, *written, strict=False)
        self._soon(self.assign_waiting())  # a chat slot came free
        return ticket

    async def follow_up(self, ticket_id: str, agent: Agent, minutes: float, text: str) -> dict[str, Any]:
        """Remember a promise to report back; the agent is reminded when it is due (rule 5)."""
        if not 0 < minutes <= 60 * 24 * 30:
            raise InvalidInput("'minutes' must be between 0 and 43200")
        ticket = await self._ticket(ticket_id)
        due = self.clock() + minutes * 60
        reminder = {"ticket_id": ticket.id, "agent": agent.name, "text": text.strip()[:500], "due": due}
        await self.records.add_follow_up(reminder, due)
        await self.tickets.add_note(ticket.id, agent.name, f"follow-up due in {minutes:g} min: {reminder['text']}",
                                    kind="follow_up")
        await self.events.publish("note", ticket_id=ticket.id)
        return reminder

    async def sla_sweep(self) -> dict[str, int]:
        """Escalate tickets waiting too long and fire due follow-up reminders; one worker at a time."""
        lease = max(1, int(self.config.sla_check_seconds))
        if not await self.records.sla_lease(lease):
            return {"escalated": 0, "reminded": 0, "returned": 0, "assigned": 0}
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
        returned = await self.return_absent()
        assigned = await self.assign_waiting()
        async for reminder in self.records.take_due_follow_ups(now):  # only one worker wins each reminder
            reminded += 1
            await self.events.publish("reminder", **reminder)
        return {"escalated": escalated, "reminded": reminded, "returned": returned, "assigned": assigned}

    async def pending_reminders(self, agent: str) -> list[dict[str, Any]]:
        return [r for r in await self.records.follow_ups() if r["agent"] == agent]

    async def ratings(self, limit: int = 100) -> dict[str, Any]:
        rows = await self.records.latest_ratings(limit)
        items = [{"id": entry_id, **fields} for entry_id, fields in rows]
        scores = [int(item["rating"]) for item in items]
        return {"ratings": items, "count": len(scores),
                "average": round(sum(scores) / len(scores), 2) if scores else None}

    async def resolved(self, *, text: str = "", agent: str = "", tag: str = "", customer: str = "",
                       since: float = 0.0, until: float = 0.0, limit: int = 50) -> list[dict[str, Any]]:
        """Closed tickets, newest first, matching every filter given: a word from the conversation,
        its wrap-up or summary; the agent; a wrap-up tag or category; the customer's name or id;
        a closing-time range."""
        needle, who, label = text.strip().lower(), customer.strip().lower(), tag.strip().lower()
        found: list[dict[str, Any]] = []
        for ticket in await self.tickets.closed(since):
            if until and ticket.closed_at > until:
                continue
            if agent and ticket.owner != agent:
                continue
            wrap = ticket.wrapup
            if label and label not in [t.lower() for t in wrap.get("tags", [])] and \
                    label != str(wrap.get("category", "")).lower():
                continue
            if who and who not in ticket.customer_name.lower() and who not in ticket.user_id.lower():
                continue
            if needle:
                raw = await self.tickets.searchable_text(ticket.id)
                haystack = " ".join([str(raw), ticket.summary, json.dumps(wrap, ensure_ascii=False), ticket.comment])
                if needle not in haystack.lower():
                    continue
            found.append(ticket.to_json())
            if len(found) >= limit:
                break
        return found

    async def csat(self, agent: str, days: float = 30) -> dict[str, Any]:
        """The agent's own satisfaction ratings: what customers thought of *their* help."""
        scores = [t.rating for t in await self.tickets.closed(self.clock() - days * 86_400)
                  if t.owner == agent and t.rating]
        return {"count": len(scores), "average": round(sum(scores) / len(scores), 2) if scores else None}

    async def team(self, lead: Agent, days: float = 7) -> dict[str, Any]:
        """The team lead's live view: each agent's presence and load, their open chats, and over
        the last ``days`` their first-response times, SLA breaches and CSAT."""
        if not lead.admin:
            raise Forbidden("admins only")
        now = self.clock()
        presence = await self.statuses()
        active = await self.tickets.active()
        closed = await self.tickets.closed(now - days * 86_400)
        sla = self.config.unclaimed_sla_minutes * 60
        rows = []
        for agent in await self.directory.all():
            mine = [t for t in active if t.owner == agent.name]
            handled = [t for t in (*mine, *closed) if t.owner == agent.name]
            responses = [t.first_response_at - t.claimed_at for t in handled if t.first_response_at and t.claimed_at]
            late = sum(1 for r in responses if r > sla)
            late += sum(1 for t in mine if not t.first_response_at and now - t.claimed_at > sla)
            ratings = [t.rating for t in closed if t.owner == agent.name and t.rating]
            state = presence.get(agent.name, {"status": "offline", "since": 0.0, "last_seen": 0.0})
            rows.append({
                **agent.to_json(), "status": state["status"], "status_since": state["since"],
                "last_seen": state["last_seen"], "load": len(mine), "limit": self.limit(agent),
                "open": [t.to_json() for t in mine],
                "resolved": sum(1 for t in closed if t.owner == agent.name and t.status == "resolved"),
                "first_response_seconds": round(sum(responses) / len(responses)) if responses else None,
                "sla_breaches": late,
                "csat": round(sum(ratings) / len(ratings), 2) if ratings else None,
            })
        queued = await self.tickets.queued()
        return {"agents": rows, "queued": len(queued), "groups": self.group_names(),
                "escalated_waiting": sum(1 for t in queued if t.escalated_at), "days": days,
                "online": sum(1 for r in rows if r["status"] in ("online", "busy"))}

    async def inbox(self, agent: Agent) -> dict[str, Any]:
        now = self.clock()
        queued = []
        for index, ticket in enumerate(await self.tickets.queued()):
            queued.append({**ticket.to_json(), "position": index + 1, "waiting_seconds": int(now - ticket.created_at)})
        mine: list[dict[str, Any]] = []
        others: list[dict[str, Any]] = []
        for ticket in await self.tickets.active():
            (mine if ticket.owner == agent.name else others).append(ticket.to_json())
        presence = (await self.statuses()).get(agent.name, {"status": "offline"})
        return {"queued": queued, "mine": mine, "others": others,
                "service_open": self.hours.is_open(now), "online_agents": await self.online_agents(),
                "reminders": await self.pending_reminders(agent.name), "status": presence["status"],
                "load": len(mine), "limit": self.limit(agent), "csat": await self.csat(agent.name),
                "groups": self.group_names()}

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

    async def wrong_answer(self, ticket_id: str, agent: Agent, seq: int) -> bool:
        """``agent`` says the bot's answer ``seq`` in this ticket's conversation was wrong: its
        question goes on the admin review list next to the entry used (once per answer)."""
        ticket = await self._ticket(ticket_id)
        conv = await self.store.load_conversation(ticket.conversation_id)
        recorded = await self.review.judge(conv, False, reason=AGENT, seq=seq)
        if recorded:
            log.info("agent %s marked bot answer #%d of %s as wrong", agent.name, seq, ticket.conversation_id)
        return recorded

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
                "slots": {k: v for k, v in conv.slots.items() if not k.startswith("_")},  # the order card
            },
            "transcript": [] if conv is None else _transcript_json(conv.transcript),
            "notes": await self.tickets.notes(ticket.id),
            "earlier_tickets": [t.to_json() for t in history if t.id != ticket.id],
            "candidate_answers": self.candidate_answers(ticket),
            "customer": await self.customer(ticket.channel, ticket.user_id),
        }


def _transcript_json(lines: Sequence[TranscriptLine]) -> list[dict[str, Any]]:
    """The agent's view of the transcript; a bot FAQ answer carries ``answer_entry`` (the entry
    it used), which the console offers to mark as wrong."""
    answered = answers(lines)
    shown = []
    for line in lines:
        item = line_json(line)
        if line.seq in answered:
            item["answer_entry"] = answered[line.seq]
        shown.append(item)
    return shown


def _searchable(conv: Conversation, since: float) -> str:
    """The words of a closed ticket's conversation, kept on the ticket for the resolved search
    (the conversation itself goes on, and expires on its own schedule)."""
    lines = [line.text for line in conv.transcript if line.at >= since - 3600 and line.role is not Role.SYSTEM]
    return "\n".join(lines)[-8000:]
