"""The classify step: Kefu's service rules first, then the readers, for every backend.

This is the one place that orders a turn's classification:

1. a message without text (a photo, a file) is acknowledged, never classified;
2. a pick of a pending clarify — a pressed button (:class:`~bot.types.Choice`) or "2", "第二个",
   "the first one" typed — answers that entry;
3. a complaint or a demand for a human (:mod:`intents.escalation`) hands off, whatever any
   model says (docs/service-rules.md §2–3);
4. the readers, in order: an external NLU first when configured (it may leave a message to the
   next), Kefu's own smalltalk and FAQ reading last (it always decides).

Everything here is pure (a Rasa reader asks its server, the one exception, which is why the
engine runs this step in a worker thread unless :meth:`Classifier.is_quick`).
"""

from __future__ import annotations

from collections.abc import Sequence

from bot.types import Action, Choice, Conversation, Decision, Intent, Reason
from intents.base import FinalReader, Reader
from intents.choice import resolve_choice
from intents.escalation import detect_escalation
from intents.language import detect_language


class Classifier:
    """Kefu's rules, then ``first`` readers in order (each may pass), then ``last``, which decides."""

    def __init__(self, last: FinalReader, first: Sequence[Reader] = ()) -> None:
        self.last = last
        self.first = tuple(first)

    def is_quick(self, text: str, conversation: Conversation) -> bool:
        return self.last.is_quick(text) and all(reader.is_quick(text) for reader in self.first)

    def decide(self, text: str, conversation: Conversation, choice: Choice | None = None) -> Decision:
        language = detect_language(text, default=conversation.language)
        ruled = by_rules(text, language, conversation, choice)
        if ruled is not None:
            return ruled
        for reader in self.first:
            decision = reader.understand(text, language, conversation)
            if decision is not None:
                return decision
        return self.last.understand(text, language, conversation)


def by_rules(text: str, language: str, conversation: Conversation, choice: Choice | None = None) -> Decision | None:
    """Steps 1–3: the decisions no model may override; None when the readers decide."""
    if not text.strip():
        return Decision(Action.SMALLTALK, language, Intent.ATTACHMENT, confidence=1.0)
    offered = conversation.pending_suggestions
    picked = choice.payload if choice is not None and choice.payload in offered else None
    if picked is None:
        picked = resolve_choice(text, offered)
    if picked is not None:
        return Decision(Action.ANSWER, language, Intent.FAQ, confidence=1.0, entry_id=picked,
                        reason=Reason.CLARIFY_CHOICE)
    escalation = detect_escalation(text, conversation.customer_texts())
    if escalation is not None:
        return Decision(Action.HANDOFF, language, escalation.kind, confidence=1.0,
                        reason=escalation.reason, detail=escalation.detail)
    return None
