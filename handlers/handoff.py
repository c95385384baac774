"""Hand the conversation to a human: tell the customer what happens, and package the context."""

from __future__ import annotations

from bot.config import HandoffConfig
from bot.types import Decision, HandoffRequest, Reply
from handlers.texts import say

_REPLY_BY_REASON = {
    "complaint": "handoff_complaint",
    "human_request": "handoff_human_request",
    "repeated_failure": "handoff_repeated_failure",
    "action_failed": "action_failed",  # a business action errored or timed out (handlers/business.py)
    "action_handoff": "action_handoff",  # a business action asked for a human
}


def start(decision: Decision, config: HandoffConfig) -> tuple[Reply, HandoffRequest]:
    key = _REPLY_BY_REASON.get(decision.reason, "handoff_low_confidence")
    text = say(key, decision.language, wait=config.expected_wait_minutes)
    request = HandoffRequest(decision.reason or "low_confidence", decision.detail, decision.candidates)
    return Reply(text), request
