"""Short, warm smalltalk replies in the customer's language; never a handoff.

"help" and off-topic messages (weather, poems, sums) get what the bot *can* help with, with a
few of the knowledge base's questions as one-tap suggestions: a way forward, not a dead end
and not a queue (a human only when the customer asks for one).
"""

from __future__ import annotations

from bot.types import Decision, Intent, Reply, Suggestion
from handlers.texts import TEXTS, say
from knowledge.schema import KnowledgeBase

SCOPE_SUGGESTIONS = 3


def reply(decision: Decision, kb: KnowledgeBase) -> Reply:
    if decision.intent in (Intent.HELP, Intent.OFF_TOPIC):
        return scope_reply(decision.intent, decision.language, kb)
    key = decision.intent if decision.intent in TEXTS else "greeting"
    return Reply(say(key, decision.language))


def scope_reply(intent: str, language: str, kb: KnowledgeBase) -> Reply:
    """What the bot can help with, and the first questions of the knowledge base as suggestions."""
    entries = list(kb.active[:SCOPE_SUGGESTIONS])
    suggestions = tuple(Suggestion(entry.title_in(language), entry.id) for entry in entries)
    lines = [say(intent, language)] + [f"{n}. {s.label}" for n, s in enumerate(suggestions, start=1)]
    return Reply("\n".join(lines), suggestions)
