"""Nothing slips (四个不漏): every turn the bot could not answer confidently is recorded.

:class:`TurnRecorder` observes the engine (the composition root, ``bot/app.py``, passes it to the
engine's constructor): with a turn's last Redis round trip it adds the day's counters (for the
dashboard), the question (for regression replays) and — when the bot clarified, handed off,
found nothing or answered with low confidence — an unanswered record (for clustering into new
knowledge).  Recording never fails a turn: the customer's
answer matters more than a statistic.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import redis.asyncio as aioredis

from bot import keys
from bot.store import RedisCommand
from bot.types import Action, InboundMessage, Role, TurnResult

log = logging.getLogger(__name__)
UNANSWERED_MAX = 5000
QUESTIONS_MAX = 2000
METRICS_TTL = 400 * 86400
LOW_CONFIDENCE = 0.6  # answered, but less sure than this: worth a look
# One command for the whole record (redis-py spends more per command than Redis does).
# KEYS: metrics hash, questions, unanswered.  ARGV: metrics TTL, questions max, unanswered max,
# question JSON ('' = none), two unanswered JSONs ('' = none), then counter name/amount pairs.
_RECORD_TURN = """
for i = 7, #ARGV, 2 do redis.call('HINCRBY', KEYS[1], ARGV[i], ARGV[i + 1]) end
redis.call('EXPIRE', KEYS[1], ARGV[1])
if ARGV[4] ~= '' then redis.call('RPUSH', KEYS[2], ARGV[4]); redis.call('LTRIM', KEYS[2], -tonumber(ARGV[2]), -1) end
for i = 5, 6 do
  if ARGV[i] ~= '' then redis.call('RPUSH', KEYS[3], ARGV[i]); redis.call('LTRIM', KEYS[3], -tonumber(ARGV[3]), -1) end
end
return 1
"""
# Right after an answer, these say the answer missed: the question it answered goes on the
# review list next to the entry used (no silent wrong answers), not only low-confidence turns.
DISPUTING_REASONS = frozenset({"human_request", "repeated_failure", "complaint"})


def day_of(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d")


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
    def __init__(self, redis: aioredis.Redis, clock: Callable[[], float] = time.time) -> None:
        self.redis = redis
        self.clock = clock

    def commands(self, msg: InboundMessage, result: TurnResult) -> list[RedisCommand]:
        """The writes that record one finished turn (sent by the engine with its last round trip)."""
        if result.duplicate:
            return []
        now = self.clock()
        metrics = keys.admin_metrics(day_of(now))
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
        question = unanswered = ""
        if decision is not None and text and decision.action is not Action.SMALLTALK:
            question = json.dumps({"text": text, "language": decision.language, "at": now}, ensure_ascii=False)
        if reason and text and decision is not None:
            unanswered = json.dumps(unanswered_record(
                text, reason, now, conv.id, decision.language, decision.confidence, decision.entry_id,
                [c.entry_id for c in decision.candidates[:3]]), ensure_ascii=False)
        disputed = ""
        answered = disputed_answer(result)
        if answered is not None:
            counters["disputed"] = 1
            disputed = json.dumps(answered, ensure_ascii=False)
        return [("EVAL", _RECORD_TURN, 3, metrics, keys.admin_questions(), keys.admin_unanswered(), METRICS_TTL,
                 QUESTIONS_MAX, UNANSWERED_MAX, question, unanswered, disputed,
                 *(part for name, amount in counters.items() for part in (name, amount)))]

    async def thumbs_down(self, conversation_id: str, text: str, language: str = "zh",
                          entry_id: str | None = None) -> None:
        """The customer said an answer did not help: the question joins the unanswered ones."""
        now = self.clock()
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.rpush(keys.admin_unanswered(), json.dumps(
                unanswered_record(text, "thumbs_down", now, conversation_id, language, 0.0, entry_id, []),
                ensure_ascii=False))
            pipe.ltrim(keys.admin_unanswered(), -UNANSWERED_MAX, -1)
            pipe.hincrby(keys.admin_metrics(day_of(now)), "unanswered", 1)
            pipe.hincrby(keys.admin_metrics(day_of(now)), "thumbs_down", 1)
            await pipe.execute()


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
