"""Route a :class:`Decision` to the handler for its action."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from bot.config import HandoffConfig
from bot.types import Action, Conversation, Decision, HandoffRequest, Reply
from handlers import business, faq, handoff, smalltalk
from knowledge.schema import KnowledgeBase


@dataclass(frozen=True)
class Outcome:
    replies: tuple[Reply, ...]
    conversation: Conversation
    handoff: HandoffRequest | None = None


Handler = Callable[[Decision, Conversation, KnowledgeBase, HandoffConfig], Outcome]


def respond(decision: Decision, conversation: Conversation, kb: KnowledgeBase, config: HandoffConfig) -> Outcome:
    handler: Handler = _HANDLERS[decision.action]
    outcome = handler(decision, conversation, kb, config)
    if conversation.pending_action and decision.action_run is None:  # the customer moved on from the action
        outcome = replace(outcome, conversation=outcome.conversation.evolve(pending_action=""))
    return outcome


def _answer(decision: Decision, conv: Conversation, kb: KnowledgeBase, config: HandoffConfig) -> Outcome:
    entry = kb.get(decision.entry_id or "")
    if decision.action_run is not None or (entry is not None and entry.action):
        replies, conversation, request = business.outcome(decision, conv, kb, config)  # the entry names an action
        return Outcome(replies, conversation, request)
    reply = faq.answer(decision, kb)
    if reply is None:  # the entry vanished between decision and reply (admin deleted it)
        return _handoff(decision, conv, kb, config)
    related = tuple(s.payload for s in reply.suggestions)  # "1" or a tap picks a related question
    return Outcome((reply,), conv.evolve(pending_suggestions=related, failures=0))


def _clarify(decision: Decision, conv: Conversation, kb: KnowledgeBase, config: HandoffConfig) -> Outcome:
    reply = faq.clarify(decision, kb)
    return Outcome((reply,), conv.evolve(pending_suggestions=decision.suggestions, failures=conv.failures + 1))


def _smalltalk(decision: Decision, conv: Conversation, kb: KnowledgeBase, config: HandoffConfig) -> Outcome:
    reply = smalltalk.reply(decision, kb)
    pending = tuple(s.payload for s in reply.suggestions)  # "1" picks the first suggested question
    return Outcome((reply,), conv.evolve(pending_suggestions=pending, failures=0))


def _handoff(decision: Decision, conv: Conversation, kb: KnowledgeBase, config: HandoffConfig) -> Outcome:
    reply, request = handoff.start(decision, config)
    return Outcome((reply,), conv.evolve(pending_suggestions=(), handoff=request), request)


_HANDLERS: dict[Action, Handler] = {
    Action.ANSWER: _answer,
    Action.CLARIFY: _clarify,
    Action.SMALLTALK: _smalltalk,
    Action.HANDOFF: _handoff,
}
