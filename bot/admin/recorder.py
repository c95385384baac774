"""Nothing slips (四个不漏): every turn the bot could not answer confidently is recorded.

:class:`TurnRecorder` observes the engine (the composition root, ``bot/app.py``, passes it to the
engine's constructor): it describes each finished turn as a :class:`~bot.storage.records.TurnRecord`
— the day's counters (for the dashboard), the question (for regression replays) and, when the bot
clarified, handed off, found nothing or answered with low confidence, an unanswered record (for
clustering into new knowledge) — which the store writes with the turn's last round trip.
Recording never fails a turn: the customer's answer matters more than a statistic.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from bot.storage.records import QUESTIONS_MAX, UNANSWERED_MAX, AdminRecords, TurnRecord, day_of
from bot.types import Action, InboundMessage, Role, TurnResult

log = logging.getLogger(__name__)
LOW_CONFIDENCE = 0.6  # answered, but less sure than this: worth a look
# Right after an answer, these say the answer missed: the question it answered goes on the
# review list next to the entry used (no silent wrong answers), not only low-confidence turns.
DISPUTING_REASONS = frozenset({"human_request", "repeated_failure", "complaint"})


def unanswered_reason(result: TurnResult) -> str:
    """Why this turn counts as unanswered ('' when it was answered confidently or was chat)."""
    decision = result.decision
    if decision is None:
        return ""
    if decision.action is Action.CLARIFY:
        return "clarified"
    if decision.action is Action.HANDOFF:
        return "handoff:" + (decision.reason or decision.intent or "unknown")
    if decision.action is Action.ANSWER:
        if decision.reason != "clarify_choice" and decision.confidence < LOW_CONFIDENCE and decision.entry_id:
            return "low_confidence"
        return ""
    return ""


class TurnRecorder:
    def __init__(self, records: AdminRecords, clock: Callable[[], float] = time.time) -> None:
        self.records = records
        self.clock = clock

    def record(self, msg: InboundMessage, result: TurnResult) -> TurnRecord | None:
        """What one finished turn adds to the dashboard (written by the store with the turn's
        last round trip); None for a duplicate."""
        if result.duplicate:
            return None
        now = self.clock()
        conv = result.conversation
        counters: dict[str, int] = {"turns": 1}
        if sum(1 for line in conv.transcript if line.role is Role.CUSTOMER) == 1:
            counters["conversations"] = 1
        if result.handoff is not None:
            counters["handoffs"] = 1
            counters[f"handoff:{result.handoff.reason}"] = 1
        decision = result.decision
        reason = unanswered_reason(result)
        text = msg.text.strip()
        if decision is not None:
            counters[f"action:{decision.action.value}"] = 1
            if decision.action is Action.ANSWER and decision.entry_id:
                counters[f"entry:{decision.entry_id}"] = 1
        if reason and text:
            counters["unanswered"] = 1
        question = unanswered = None
        if decision is not None and text and decision.action is not Action.SMALLTALK:
            question = {"text": text, "language": decision.language, "at": now}
        if reason and text and decision is not None:
            unanswered = unanswered_record(
                text, reason, now, conv.id, decision.language, decision.confidence, decision.entry_id,
                [c.entry_id for c in decision.candidates[:3]])
        disputed = disputed_answer(result)
        if disputed is not None:
            counters["disputed"] = 1
        return TurnRecord(now, counters, question, unanswered, disputed)


def disputed_answer(result: TurnResult) -> dict[str, Any] | None:
    """The previous question's record when this turn disputes the bot's answer to it: the customer
    asked for a human, said the bot missed ("答非所问", "that's not what I asked") or complained
    right after an FAQ answer."""
    decision = result.decision
    if decision is None or decision.action is not Action.HANDOFF or decision.reason not in DISPUTING_REASONS:
        return None
    asked = [line for line in result.conversation.transcript
             if line.role is Role.CUSTOMER and isinstance(line.meta.get("decision"), dict)]
    if len(asked) < 2:
        return None
    previous = asked[-2]
    earlier: dict[str, Any] = previous.meta["decision"]
    if earlier.get("action") != Action.ANSWER.value or not earlier.get("entry_id"):
        return None
    return unanswered_record(previous.text, "disputed", result.conversation.updated_at or previous.at,
                             result.conversation.id, decision.language, float(earlier.get("confidence") or 0.0),
                             str(earlier["entry_id"]), [])


def unanswered_record(text: str, reason: str, at: float, conversation: str, language: str, confidence: float,
                      entry_id: str | None, candidates: list[str]) -> dict[str, Any]:
    return {"text": text, "reason": reason, "at": at, "conversation": conversation, "language": language,
            "confidence": round(confidence, 4), "entry_id": entry_id, "candidates": candidates}


__all__ = ["LOW_CONFIDENCE", "QUESTIONS_MAX", "UNANSWERED_MAX", "TurnRecorder", "day_of",
           "disputed_answer", "unanswered_reason", "unanswered_record"]
