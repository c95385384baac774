"""Kefu's own rasa-sdk actions, bound to a running :class:`~bot.runtime.Runtime`.

* ``action_kefu_answer`` — answer the latest message from Kefu's knowledge base (or ask which
  entry was meant), with Kefu's full decision path; sets ``kefu_entry_id``, ``kefu_confidence``,
  ``kefu_decision`` and ``kefu_language``.  When Kefu decides a human is needed (a complaint,
  "转人工", nothing matches) it says nothing itself and returns
  ``FollowupAction("action_kefu_handoff")``, so the assistant never answers a complaint with a FAQ.
* ``action_kefu_handoff`` — open a handoff ticket on Kefu's desk with the Rasa tracker's
  transcript and the reason (slot ``kefu_handoff_reason``, else what Kefu detects), and reply
  with the queue message.
* ``action_kefu_handoff_status`` — tell the customer where their handoff stands.

Rasa's tracker is the record of what was said; Kefu keeps the state it needs between Rasa turns
(clarify choices, a pending business action, the handoff) under ``rasa:<sender_id>`` in its
store, and copies the tracker's transcript there when it hands off, so the agent sees it all.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import FollowupAction, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from bot.types import Action as Decided
from bot.types import (
    Conversation,
    ConversationState,
    HandoffRequest,
    Reply,
    Role,
    TranscriptLine,
)
from handlers import handoff, respond
from handlers.actions.call import HANDOFF_ACTION
from handlers.texts import say
from intents.escalation import detect_escalation
from intents.language import detect_language

if TYPE_CHECKING:
    from bot.runtime import Runtime

CHANNEL = "rasa"
ENTRY_SLOT, CONFIDENCE_SLOT, DECISION_SLOT = "kefu_entry_id", "kefu_confidence", "kefu_decision"
LANGUAGE_SLOT, REASON_SLOT, HANDOFF_STATE_SLOT = "kefu_language", "kefu_handoff_reason", "kefu_handoff_state"

Events = list[dict[str, Any]]


def conversation_id(tracker: Tracker) -> str:
    return f"{CHANNEL}:{tracker.sender_id}"


def latest_text(tracker: Tracker) -> str:
    return str((tracker.latest_message or {}).get("text") or "")


def tracker_lines(tracker: Tracker) -> list[TranscriptLine]:
    """The customer's and the assistant's messages in the Rasa tracker, oldest first."""
    lines = []
    for event in tracker.events_after_latest_restart():
        kind, text = event.get("event"), event.get("text")
        if kind not in ("user", "bot") or not isinstance(text, str) or not text:
            continue
        at = float(event.get("timestamp") or 0.0)
        role = Role.CUSTOMER if kind == "user" else Role.BOT
        lines.append(TranscriptLine(role, text, at or time.time(), {"source": "rasa"}))
    return lines


def unseen_lines(conv: Conversation, tracker: Tracker) -> list[TranscriptLine]:
    """Tracker messages newer than anything Kefu already recorded for this conversation."""
    last = max((line.at for line in conv.transcript), default=0.0)
    return [line for line in tracker_lines(tracker) if line.at > last]


class KefuAction(Action):  # type: ignore[misc]  # rasa-sdk ships no type hints
    """Base of Kefu's actions: holds the runtime (store, knowledge, desk) they work with."""

    action_name = ""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def name(self) -> str:
        return self.action_name

    async def conversation(self, tracker: Tracker) -> Conversation:
        cid = conversation_id(tracker)
        stored = await self.runtime.store.load_conversation(cid)
        if stored is not None:
            return stored
        return Conversation(cid, CHANNEL, tracker.sender_id, tracker.sender_id, updated_at=time.time())

    def language(self, tracker: Tracker, conv: Conversation) -> str:
        slot = tracker.get_slot(LANGUAGE_SLOT)
        text = latest_text(tracker)
        if text:
            return detect_language(text, default=slot if isinstance(slot, str) and slot else conv.language)
        return slot if isinstance(slot, str) and slot else conv.language


def utter(dispatcher: CollectingDispatcher, replies: tuple[Reply, ...]) -> None:
    for reply in replies:
        buttons = [{"title": s.label, "payload": s.payload} for s in reply.suggestions]
        dispatcher.utter_message(text=reply.text, buttons=buttons)


class AnswerAction(KefuAction):
    action_name = "action_kefu_answer"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> Events:
        text = latest_text(tracker)
        conv = await self.conversation(tracker)
        now = time.time()
        if conv.state in (ConversationState.WAITING, ConversationState.AGENT):
            lines = unseen_lines(conv, tracker) or [TranscriptLine(Role.CUSTOMER, text, now, {"source": "rasa"})]
            await self.runtime.store.save_conversation(conv.evolve(updated_at=now), lines)
            for line in lines:  # the human who owns the conversation sees it; the bot stays silent
                if line.role is Role.CUSTOMER:
                    await self.runtime.desk.customer_wrote(conv, line)
            return [SlotSet(DECISION_SLOT, "agent"), SlotSet(HANDOFF_STATE_SLOT, conv.state.value)]
        # Rasa's tracker is the record of this conversation; Kefu decides in its context.
        history = tracker_lines(tracker)
        if history and history[-1].role is Role.CUSTOMER and history[-1].text == text:
            history = history[:-1]
        live = self.runtime.knowledge
        decision = await self.runtime.engine.decide(text, conv.evolve(transcript=tuple(history)))
        slots: Events = [SlotSet(DECISION_SLOT, decision.action.value), SlotSet(ENTRY_SLOT, decision.entry_id),
                         SlotSet(CONFIDENCE_SLOT, round(decision.confidence, 4)),
                         SlotSet(LANGUAGE_SLOT, decision.language)]
        if decision.action is Decided.HANDOFF:  # action_kefu_handoff opens the ticket with the whole transcript
            reason = str(decision.reason or "low_confidence")
            return [*slots, SlotSet(REASON_SLOT, reason), FollowupAction(HANDOFF_ACTION)]
        outcome = respond(decision, conv, live.kb, self.runtime.config.handoff)
        new = outcome.conversation.evolve(language=decision.language, updated_at=now)
        if outcome.handoff is None:
            await self.runtime.store.save_conversation(new)  # state only: clarify choices, pending action, slots
            utter(dispatcher, outcome.replies)
            return slots
        # e.g. a business action failed: its reply already says a human takes over
        new = new.evolve(state=ConversationState.WAITING)
        lines = unseen_lines(conv, tracker)
        replies = await self.runtime.desk.open_ticket(new.with_lines(lines), outcome.handoff, outcome.replies)
        lines += [TranscriptLine(Role.BOT, r.text, now, {"source": "kefu"}) for r in replies]
        await self.runtime.store.save_conversation(new, lines)
        utter(dispatcher, replies)
        return [*slots, SlotSet(REASON_SLOT, str(outcome.handoff.reason)), SlotSet(HANDOFF_STATE_SLOT, "waiting")]


class HandoffAction(KefuAction):
    action_name = "action_kefu_handoff"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> Events:
        conv = await self.conversation(tracker)
        language = self.language(tracker, conv)
        wait = self.runtime.config.handoff.expected_wait_minutes
        if conv.state in (ConversationState.WAITING, ConversationState.AGENT):  # never a second ticket
            dispatcher.utter_message(text=say(f"handoff_status_{conv.state.value}", language, wait=wait))
            return [SlotSet(HANDOFF_STATE_SLOT, conv.state.value)]
        if not await self.runtime.desk.accepts(conv):  # a blocked customer (abuse): no agent is called
            dispatcher.utter_message(text=say("handoff_refused", language))
            return [SlotSet(HANDOFF_STATE_SLOT, "none")]
        text = latest_text(tracker)
        reason = tracker.get_slot(REASON_SLOT)
        if not isinstance(reason, str) or not reason:
            history = [line.text for line in tracker_lines(tracker) if line.role is Role.CUSTOMER][:-1]
            found = detect_escalation(text, history) if text else None
            reason = str(found.reason) if found is not None else "human_request"
        reply = handoff.reply(reason, language, self.runtime.config.handoff)
        request = HandoffRequest(reason, f"handed off by the Rasa assistant; latest message: {text[:200]}",
                                 conv.handoff.candidates if conv.handoff else ())
        now = time.time()
        lines = unseen_lines(conv, tracker)
        new = conv.evolve(state=ConversationState.WAITING, handoff=request, language=language, updated_at=now,
                          pending_suggestions=(), pending_action="")
        # queue first, then save (as the engine does): a crash in between leaves a ticket, not a lost customer
        replies = await self.runtime.desk.open_ticket(new.with_lines(lines), request, (reply,))
        lines += [TranscriptLine(Role.BOT, r.text, now, {"source": "kefu", "kind": "handoff"}) for r in replies]
        await self.runtime.store.save_conversation(new, lines)
        utter(dispatcher, replies)
        return [SlotSet(HANDOFF_STATE_SLOT, "waiting"), SlotSet(REASON_SLOT, reason), SlotSet(LANGUAGE_SLOT, language)]


class HandoffStatusAction(KefuAction):
    action_name = "action_kefu_handoff_status"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> Events:
        conv = await self.conversation(tracker)
        language = self.language(tracker, conv)
        state = conv.state.value if conv.state in (ConversationState.WAITING, ConversationState.AGENT) else "none"
        dispatcher.utter_message(text=say(f"handoff_status_{state}", language,
                                          wait=self.runtime.config.handoff.expected_wait_minutes))
        return [SlotSet(HANDOFF_STATE_SLOT, state)]


def kefu_actions(runtime: Runtime) -> list[KefuAction]:
    return [AnswerAction(runtime), HandoffAction(runtime), HandoffStatusAction(runtime)]
