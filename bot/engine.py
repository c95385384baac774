"""One engine turn: dedupe → lock → load → (agent side | classify → act → respond) → save → replies.

The engine is the only place that sequences a turn.  It sees :class:`InboundMessage` in and
returns :class:`TurnResult` out; channels deliver, the store persists.  A bot turn has three
steps: *classify* (pure, :mod:`intents.classify`), *act* (async I/O: the business action the
decision calls for, :mod:`handlers.actions.act`) and *respond* (pure, :mod:`handlers`).
Classification that runs the model (or asks an NLU server) runs in a worker thread so one slow
message never stalls the event loop that serves webhooks; a repeated question, whose vector is
remembered, is decided on the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Protocol

from bot import metrics
from bot.config import Config
from bot.desk import AgentDesk, SurveyTurn
from bot.errors import StoreUnavailable
from bot.storage.client import REDIS_ERRORS
from bot.storage.conversations import Duplicate, Store
from bot.storage.records import TurnRecord
from bot.types import (
    Choice,
    Conversation,
    ConversationState,
    Decision,
    InboundMessage,
    Reply,
    Role,
    TranscriptLine,
    TurnResult,
)
from handlers import respond
from handlers.actions.act import BusinessActions
from handlers.texts import say
from intents.base import IntentLayer
from intents.escalation import is_cancel_request
from intents.language import detect_language
from knowledge.schema import KnowledgeBase

log = logging.getLogger(__name__)


class TurnObserver(Protocol):
    """Told about every finished turn (the admin console's recorder): the record it returns (as
    data) is written with the turn's last round trip to Redis."""

    def record(self, msg: InboundMessage, result: TurnResult) -> TurnRecord | None: ...


class Engine:
    def __init__(
        self,
        config: Config,
        store: Store,
        intents: Callable[[], IntentLayer],
        knowledge: Callable[[], KnowledgeBase],
        desk: AgentDesk,
        clock: Callable[[], float] = time.time,
        actions: BusinessActions | None = None,
        observers: Sequence[TurnObserver] = (),
    ) -> None:
        """``intents`` and ``knowledge`` are getters so a live knowledge update takes effect
        on the next turn without rebuilding the engine; ``actions`` runs business actions
        (None: no runner, an entry naming an action is handed off); ``observers`` record every
        turn."""
        self.config = config
        self.store = store
        self.intents = intents
        self.knowledge = knowledge
        self.desk = desk
        self.clock = clock
        self.actions = actions or BusinessActions(None)
        self.observers = tuple(observers)

    async def handle(self, msg: InboundMessage) -> TurnResult:
        """One turn per platform message id, across workers and retries.

        The id is claimed for as long as the conversation lock may be held, and remembered for
        the full dedupe period once the turn is saved.  So a retry during a turn is a duplicate,
        a failed turn's retry is processed, and if the worker died mid-turn its claim lapses with
        its lock and the retry is answered.  Claim, lock and load are one round trip to Redis,
        as are unlock and remember."""
        started = time.perf_counter()
        namespace = f"msg:{msg.channel}"
        start = await self.store.begin_turn(msg.conversation_id, namespace, msg.message_id)
        if isinstance(start, Duplicate):
            log.info("duplicate %s message %s ignored%s", msg.channel, msg.message_id,
                     " (its first turn is still running)" if start.in_progress else "")
            return TurnResult((), Conversation.start(msg), duplicate=True, in_progress=start.in_progress)
        if start.conversation is not None and _already_saved(start.conversation, msg.message_id):
            # The turn was saved but not marked done (the worker died, or Redis failed, right
            # after saving): the retry is a finished duplicate, never a second answer.
            await self.store.end_turn(msg.conversation_id, start, namespace, msg.message_id, done=True)
            log.info("%s message %s was answered before its worker could mark it", msg.channel, msg.message_id)
            return TurnResult((), start.conversation, duplicate=True)
        if msg.choice is not None:  # a button: recorded (and read) as if typed, "2" for the 2nd offered
            offered = start.conversation.pending_suggestions if start.conversation is not None else ()
            msg = replace(msg, text=msg.choice.said(offered))
        try:
            result = await self._turn(msg, start.conversation)
        except BaseException:
            with contextlib.suppress(StoreUnavailable, *REDIS_ERRORS):  # let the platform's retry in
                await self.store.end_turn(msg.conversation_id, start, namespace, msg.message_id, done=False)
            raise
        try:
            await self.store.end_turn(msg.conversation_id, start, namespace, msg.message_id, done=True,
                                      records=self.records_of(msg, result))
        except StoreUnavailable as exc:  # the turn is saved; a retry after the claim lapses repeats it
            log.warning("could not mark %s message %s as done: %s", msg.channel, msg.message_id, exc)
        seconds = time.perf_counter() - started
        outcome = metrics.observe_turn(msg.channel, result, seconds)
        if log.isEnabledFor(logging.INFO):
            reason = result.handoff.reason if result.handoff is not None else ""
            log.info("turn %s on %s: %s%s in %.1f ms", start.token[:12], msg.channel, outcome,
                     f" ({reason})" if reason else "", seconds * 1000, extra={"turn": {
                         "turn_id": start.token[:12], "channel": msg.channel, "conversation": msg.conversation_id,
                         "outcome": outcome, "reason": reason, "latency_ms": round(seconds * 1000, 2)}})
        return result

    def records_of(self, msg: InboundMessage, result: TurnResult) -> Sequence[TurnRecord]:
        """What the observers noted about a finished turn, written with the turn's last round
        trip.  An observer that fails is logged and skipped: the customer's answer matters more."""
        records: list[TurnRecord] = []
        for observer in self.observers:
            try:
                record = observer.record(msg, result)
            except Exception:
                log.exception("turn not recorded by %s", type(observer).__name__)
                continue
            if record is not None:
                records.append(record)
        return records

    async def _turn(self, msg: InboundMessage, stored: Conversation | None) -> TurnResult:
        now = self.clock()
        conv = stored or Conversation.start(msg)
        meta: dict[str, object] = {"message_id": msg.message_id}
        if msg.attachments:
            meta["attachments"] = [{"kind": a.kind, "ref": a.ref, "name": a.name} for a in msg.attachments]
        customer_line = TranscriptLine(Role.CUSTOMER, msg.text, now, meta)
        if conv.state is ConversationState.CLOSED:  # resolved by an agent: a survey answer, or a new start
            survey = await self.desk.survey_answer(conv, customer_line)
            if survey is not None:
                return await self._survey_turn(conv, customer_line, survey)
            conv = conv.back_to_bot()

        if conv.state in (ConversationState.WAITING, ConversationState.AGENT):
            return await self._agent_side(conv, customer_line, msg)

        limit = self.config.security.rate_limit_per_minute
        if limit and (count := await self.store.count_message(conv.id, now)) > limit:
            return await self._rate_limited(conv, customer_line, msg, first=count == limit + 1)

        text = msg.text[:self.config.security.max_classified_chars or None]  # a novel costs what a question does
        decision = await self.decide(text, conv, msg.choice)
        outcome = respond(decision, conv, self.knowledge(), self.config.handoff)
        conv = outcome.conversation.evolve(language=decision.language, updated_at=now)
        decision_meta = {"action": decision.action.value, "entry_id": decision.entry_id,
                         "confidence": round(decision.confidence, 4), "reason": decision.reason}
        lines = [replace(customer_line, meta={**meta, "decision": decision_meta})]
        replies = outcome.replies
        if outcome.handoff is not None and not await self.desk.accepts(conv):
            log.info("handoff refused for blocked customer %s", conv.id)
            conv = conv.evolve(state=ConversationState.BOT, handoff=None)
            replies = (Reply(say("handoff_refused", decision.language)),)
            outcome = replace(outcome, handoff=None)
        if outcome.handoff is not None:
            # Queue first (idempotent per conversation), then save: a crash in between leaves a
            # ticket an agent can still claim, never a customer waiting in no queue.
            conv = conv.evolve(state=ConversationState.WAITING)
            replies = await self.desk.open_ticket(conv.with_lines(lines), outcome.handoff, replies)
        lines += [TranscriptLine(Role.BOT, reply.text, now, _reply_meta(reply)) for reply in replies]
        await self.store.save_conversation(conv, lines)
        conv = conv.with_lines(lines)
        return TurnResult(replies, conv, decision, outcome.handoff)

    async def decide(self, text: str, conv: Conversation, choice: Choice | None = None) -> Decision:
        """Classify (on the loop when quick, else in a worker thread), then act: the decision with
        its business action run.  Also the path of the Rasa action server and the admin's "try it"."""
        layer = self.intents()
        deciding = time.perf_counter()
        if layer.is_quick(text, conv):  # a remembered question: the thread hop would cost more
            decision = layer.decide(text, conv, choice)
        else:
            decision = await asyncio.to_thread(layer.decide, text, conv, choice)
        metrics.observe_decision(time.perf_counter() - deciding)
        return await self.actions.act(decision, text, conv, self.knowledge())

    async def _agent_side(self, conv: Conversation, line: TranscriptLine, msg: InboundMessage) -> TurnResult:
        """A human is (or will be) responsible: the message joins the ticket, not the bot."""
        language = detect_language(msg.text, default=conv.language)
        replies: tuple[Reply, ...] = ()
        limit = self.config.security.rate_limit_per_minute
        if limit and await self.store.count_message(conv.id, line.at) > limit:
            # a flood while waiting: kept for the agent (trimmed first), not pushed to the console
            conv = conv.evolve(language=language, updated_at=line.at)
            flood = replace(line, meta={**line.meta, "rate_limited": True})
            await self.store.save_conversation(conv, [flood])
            return TurnResult((), conv.with_lines([flood]))
        if conv.state is ConversationState.WAITING and is_cancel_request(msg.text):
            conv = conv.back_to_bot()
            replies = (Reply(say("cancel_handoff", language)),)
            await self.desk.cancelled(conv)
        elif conv.state is ConversationState.WAITING:
            replies = await self.desk.while_waiting(conv.evolve(language=language), line)
        lines = [line] + [TranscriptLine(Role.BOT, r.text, line.at, {"kind": "waiting_note"}) for r in replies]
        conv = conv.evolve(language=language, updated_at=line.at)
        await self.store.save_conversation(conv, lines)
        conv = conv.with_lines(lines)
        if conv.state is not ConversationState.BOT:
            await self.desk.customer_wrote(conv, line)
        return TurnResult(replies, conv)

    async def _rate_limited(self, conv: Conversation, line: TranscriptLine, msg: InboundMessage,
                            first: bool) -> TurnResult:
        """Too many messages this minute: keep the message (an agent may read it), don't classify
        it, and say so once per minute rather than to every message of a flood."""
        language = detect_language(msg.text, default=conv.language)
        replies = (Reply(say("rate_limited", language)),) if first else ()
        lines = [replace(line, meta={**line.meta, "rate_limited": True})]
        lines += [TranscriptLine(Role.BOT, r.text, line.at, {"kind": "rate_limited"}) for r in replies]
        conv = conv.evolve(language=language, updated_at=line.at)
        await self.store.save_conversation(conv, lines)
        log.warning("conversation %s is over %d messages a minute; not answering", conv.id,
                    self.config.security.rate_limit_per_minute)
        return TurnResult(replies, conv.with_lines(lines))

    async def _survey_turn(self, conv: Conversation, line: TranscriptLine, survey: SurveyTurn) -> TurnResult:
        """The customer rated (or commented on) a resolved conversation; the bot stays out of it."""
        lines = [replace(line, meta={**line.meta, "kind": "survey_answer"})]
        lines += [TranscriptLine(Role.BOT, r.text, line.at, {**_reply_meta(r), "kind": "survey"})
                  for r in survey.replies]
        conv = conv.evolve(state=survey.state, updated_at=line.at)
        await self.store.save_conversation(conv, lines)
        return TurnResult(survey.replies, conv.with_lines(lines))


def _already_saved(conv: Conversation, message_id: str) -> bool:
    """True if a customer line of this message id is in the stored transcript."""
    return bool(message_id) and any(line.role is Role.CUSTOMER and line.meta.get("message_id") == message_id
                                    for line in reversed(conv.transcript))


def _reply_meta(reply: Reply) -> dict[str, object]:
    if not reply.suggestions:
        return {}
    return {"suggestions": [{"label": s.label, "payload": s.payload} for s in reply.suggestions]}
