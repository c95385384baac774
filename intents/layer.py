"""Kefu's own reading of a message: smalltalk, then the FAQ (the last reader of every classifier).

Kefu's service rules come first, in :mod:`intents.classify`: a pending clarify is resolved before
anything else, so "1" after "您是想问：1… 2…" answers the first entry, and a complaint must never
be answered with an FAQ paragraph.  Complaints are caught twice: by explicit signals there
(:mod:`intents.escalation`: 12315, 转人工, insults) and by meaning here (the retriever's complaint
classes: a broken promise, a loss blamed on the company, sarcasm); a greeting is never handed
off, and off-topic messages get a reply that says what the bot can help with, not a queue.
"""

from __future__ import annotations

from bot.config import IntentsConfig
from bot.types import Action, Conversation, Decision, Intent, Reason
from intents.faq import FaqMatcher
from intents.smalltalk import detect_smalltalk
from knowledge.builtin import builtin_examples


class KefuReader:
    def __init__(self, matcher: FaqMatcher, config: IntentsConfig) -> None:
        self.matcher = matcher
        self.config = config

    def is_quick(self, text: str) -> bool:
        return self.matcher.retriever.is_quick(text)

    def understand(self, text: str, language: str, conversation: Conversation) -> Decision:
        smalltalk = detect_smalltalk(text)
        if smalltalk is not None:
            return Decision(Action.SMALLTALK, language, Intent(smalltalk), confidence=1.0)

        match = self.matcher.match(text)
        if match.outcome == "complaint":
            return Decision(Action.HANDOFF, language, Intent.COMPLAINT_BY_MEANING, match.confidence,
                            reason=Reason.COMPLAINT, detail=complaint_detail(match.complaint_kind),
                            candidates=match.candidates)
        if match.outcome == "off_topic":
            return Decision(Action.SMALLTALK, language, Intent.OFF_TOPIC, match.confidence,
                            candidates=match.candidates)
        if match.outcome == "answer":
            return Decision(Action.ANSWER, language, Intent.FAQ, match.confidence, entry_id=match.entry_id,
                            suggestions=match.suggestions, candidates=match.candidates)
        if match.outcome == "clarify":
            if conversation.failures + 1 >= self.config.failures_before_handoff:
                return Decision(Action.HANDOFF, language, Intent.REPEATED_FAILURE, match.confidence,
                                reason=Reason.REPEATED_FAILURE, candidates=match.candidates,
                                detail=f"bot could not pin down the question after {conversation.failures + 1} tries")
            return Decision(Action.CLARIFY, language, Intent.FAQ, match.confidence,
                            suggestions=match.suggestions, candidates=match.candidates)
        best = match.candidates[0] if match.candidates else None
        detail = (f"no confident answer (best: {best.entry_id} at {best.score:.2f})" if best
                  else "no matching knowledge entry")
        return Decision(Action.HANDOFF, language, Intent.OUT_OF_SCOPE, match.confidence,
                        reason=Reason.LOW_CONFIDENCE, detail=detail, candidates=match.candidates)


def complaint_detail(kind: str) -> str:
    """The agent's one line for a complaint recognised by meaning ("unhappy: says a promise was broken")."""
    known = builtin_examples().complaints.get(kind)
    return f"unhappy: {known.detail_en}" if known is not None else "unhappy (recognised by meaning)"
