"""Hand the conversation to a human: tell the customer what happens, and package the context."""

from __future__ import annotations

from bot.config import HandoffConfig
from bot.types import Decision, HandoffRequest, Reason, Reply
from handlers.texts import say

_REPLY_BY_REASON: dict[str, str] = {
    Reason.COMPLAINT: "handoff_complaint",
    Reason.HUMAN_REQUEST: "handoff_human_request",
    Reason.REPEATED_FAILURE: "handoff_repeated_failure",
    Reason.ACTION_FAILED: "action_failed",  # a business action errored or timed out (handlers/business.py)
    Reason.ACTION_HANDOFF: "action_handoff",  # a business action asked for a human
}


def start(decision: Decision, config: HandoffConfig) -> tuple[Reply, HandoffRequest]:
    request = HandoffRequest(decision.reason or Reason.LOW_CONFIDENCE, decision.detail, decision.candidates)
    return reply(request.reason, decision.language, config), request


def reply(reason: str, language: str, config: HandoffConfig) -> Reply:
    """What the customer is told when handed off for ``reason`` (any stable code: one a Rasa
    assistant set is worded as a low-confidence handoff)."""
    key = _REPLY_BY_REASON.get(reason, "handoff_low_confidence")
    return Reply(say(key, language, wait=config.expected_wait_minutes))
