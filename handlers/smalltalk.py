"""Short, warm smalltalk replies in the customer's language; never a handoff."""

from __future__ import annotations

from bot.types import Decision, Reply
from handlers.texts import TEXTS, say


def reply(decision: Decision) -> Reply:
    key = decision.intent if decision.intent in TEXTS else "greeting"
    return Reply(say(key, decision.language))
