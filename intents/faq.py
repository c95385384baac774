"""FAQ decision: answer with one entry, ask the customer to choose between close ones, or neither.

The retriever's scores are calibrated probabilities that sum to at most 1 over the entries
(the rest is "none of these"), which makes the rules simple and independent of the size of
the knowledge base:

* **answer** — the best entry is at least ``thresholds.answer`` likely and leads the runner-up
  by ``clarify_margin``.  A wrong answer costs more than a question (the customer acts on it),
  so this is the strict one.
* **clarify** — otherwise, if the probability that *one of* the top ``max_suggestions`` entries
  is meant reaches ``thresholds.clarify``: offer 2–``max_suggestions`` of them.  Summing the
  mass lets three plausible 20 % candidates produce a question instead of a dead end.
* **none** — the message is most likely about nothing in the FAQ (out of scope, or a
  complaint); the engine decides whether to hand off.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from bot.config import ThresholdConfig
from bot.types import Candidate
from knowledge.search import Retriever

Outcome = Literal["answer", "clarify", "none"]


@dataclass(frozen=True)
class FaqMatch:
    outcome: Outcome
    confidence: float  # calibrated probability of the best entry
    candidates: tuple[Candidate, ...]  # top few, for the agent / suggestions
    entry_id: str | None  # set when outcome == "answer"
    suggestions: tuple[str, ...]  # entry ids when outcome == "clarify" (2–max_suggestions)


class FaqMatcher:
    """Turns retriever candidates into one of the three outcomes."""

    def __init__(self, retriever: Retriever, thresholds: ThresholdConfig) -> None:
        self.retriever = retriever
        self.thresholds = thresholds

    def match(self, text: str) -> FaqMatch:
        t = self.thresholds
        keep = max(3, t.max_suggestions)
        candidates = tuple(self.retriever.search(text, k=keep))
        if not candidates:
            return FaqMatch("none", 0.0, (), None, ())
        top = candidates[0]
        runner_up = candidates[1].score if len(candidates) > 1 else 0.0
        if top.score >= t.answer and top.score - runner_up >= t.clarify_margin:
            return FaqMatch("answer", top.score, candidates, top.entry_id, ())
        offered = candidates[: max(2, t.max_suggestions)]
        if len(offered) >= 2 and sum(c.score for c in offered) >= t.clarify:
            chosen = [c for c in offered if c.score >= t.suggestion_min]
            if len(chosen) < 2:
                chosen = list(offered[:2])
            return FaqMatch("clarify", top.score, candidates, None, tuple(c.entry_id for c in chosen))
        return FaqMatch("none", top.score, candidates, None, ())
