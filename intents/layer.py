"""Kefu's own intent layer: escalation first, then smalltalk, then the FAQ.

Order matters: a complaint must never be answered with an FAQ paragraph, and a greeting
must never be handed off.  A pending clarify is resolved before anything else, so "1" after
"您是想问：1… 2…" answers the first entry.  Complaints are caught twice: by explicit signals
(:mod:`intents.escalation`: 12315, 转人工, insults) and by meaning (the retriever's complaint
classes: a broken promise, a loss blamed on the company, sarcasm); off-topic messages get a
reply that says what the bot can help with, not a queue.
"""

from __future__ import annotations

from bot.config import IntentsConfig
from bot.types import Action, Conversation, Decision
from intents.choice import resolve_choice
from intents.escalation import detect_escalation
from intents.faq import FaqMatcher
from intents.language import detect_language
from intents.smalltalk import Smalltalk, detect_smalltalk
from knowledge.builtin import builtin_examples


class KefuIntentLayer:
    def __init__(self, matcher: FaqMatcher, config: IntentsConfig) -> None:
        self.matcher = matcher
        self.config = config

    def is_quick(self, text: str, conversation: Conversation) -> bool:
        return self.matcher.retriever.is_quick(text)

    def decide(self, text: str, conversation: Conversation) -> Decision:
        language = detect_language(text, default=conversation.language)
        if not text.strip():
            return Decision(Action.SMALLTALK, language, "attachment", confidence=1.0)

        picked = resolve_choice(text, conversation.pending_suggestions)
        if picked is not None:
            return Decision(Action.ANSWER, language, "faq", confidence=1.0, entry_id=picked,
                            reason="clarify_choice")

        history = conversation.customer_texts()
        escalation = detect_escalation(text, history)
        if escalation is not None:
            return Decision(Action.HANDOFF, language, escalation.kind, confidence=1.0,
                            reason=escalation.reason, detail=escalation.detail)

        smalltalk = detect_smalltalk(text)
        if smalltalk is not None:
            return Decision(Action.SMALLTALK, language, smalltalk.value, confidence=1.0)

        match = self.matcher.match(text)
        if match.outcome == "complaint":
            return Decision(Action.HANDOFF, language, "complaint_by_meaning", match.confidence, reason="complaint",
                            detail=complaint_detail(match.complaint_kind), candidates=match.candidates)
        if match.outcome == "off_topic":
            return Decision(Action.SMALLTALK, language, Smalltalk.OFF_TOPIC.value, match.confidence,
                            candidates=match.candidates)
        if match.outcome == "answer":
            return Decision(Action.ANSWER, language, "faq", match.confidence, entry_id=match.entry_id,
                            suggestions=match.suggestions, candidates=match.candidates)
        if match.outcome == "clarify":
            if conversation.failures + 1 >= self.config.failures_before_handoff:
                return Decision(Action.HANDOFF, language, "repeated_failure", match.confidence,
                                reason="repeated_failure", candidates=match.candidates,
                                detail=f"bot could not pin down the question after {conversation.failures + 1} tries")
            return Decision(Action.CLARIFY, language, "faq", match.confidence,
                            suggestions=match.suggestions, candidates=match.candidates)
        best = match.candidates[0] if match.candidates else None
        detail = (f"no confident answer (best: {best.entry_id} at {best.score:.2f})" if best
                  else "no matching knowledge entry")
        return Decision(Action.HANDOFF, language, "out_of_scope", match.confidence, reason="low_confidence",
                        detail=detail, candidates=match.candidates)


def complaint_detail(kind: str) -> str:
    """The agent's one line for a complaint recognised by meaning ("unhappy: says a promise was broken")."""
    known = builtin_examples().complaints.get(kind)
    return f"unhappy: {known.detail_en}" if known is not None else "unhappy (recognised by meaning)"
