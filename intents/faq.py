"""FAQ decision: answer with one entry, ask the customer to choose, or neither — and recognise
the messages that are not questions for the FAQ at all (off-topic chat, complaints).

The retriever's scores are calibrated probabilities over the entries, the off-topic class, the
complaint kinds and "none of these" (:class:`knowledge.search.Analysis`), fitted to the knowledge
base it serves, which makes the rules simple and independent of its size:

* **complaint** — the complaint kinds together reach ``thresholds.complaint``: the customer is
  unhappy, whatever topic they name; never an FAQ paragraph (docs/service-rules.md §2).
* **answer** — the best entry is at least ``thresholds.answer`` likely and leads the runner-up
  by ``clarify_margin``.  Close runners-up (at least ``related_min``) are offered next to the
  answer as "related questions": the customer gets the answer at once, and one tap if it was
  the neighbour they meant.
* **off_topic** — no confident entry, and the off-topic class reaches ``thresholds.off_topic``
  (weather, poems, arithmetic): the bot says what it can help with; nobody is queued.  An
  off-topic request reads like a demand to the complaint model ("看一下今天早上新闻"), so the
  off-topic class, when sure, goes before the balance below.
* **complaint, by the balance** — no confident entry, and the complaint kinds are more likely
  than not (``thresholds.complaint_unsure``): a wrong FAQ answer or a list of choices would
  be the worst reply to an unhappy customer, so a person takes it ("因为你们发货晚了，我送人的礼物都没赶上").
* **clarify** — otherwise, if the probability that *one of* the top ``max_suggestions`` entries
  is meant reaches ``thresholds.clarify``: offer 2–``max_suggestions`` of them.
* **none** — most likely about nothing in the FAQ; the engine hands off (an in-domain question
  the knowledge base lacks: a human answers it, and it lands on the unanswered list).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from bot.config import ThresholdConfig
from bot.types import Candidate
from knowledge.search import Analysis, Retriever

Outcome = Literal["answer", "clarify", "none", "off_topic", "complaint"]


@dataclass(frozen=True)
class FaqMatch:
    outcome: Outcome
    confidence: float  # calibrated probability of the best entry (of the complaint kinds, for complaints)
    candidates: tuple[Candidate, ...]  # top few, for the agent / suggestions
    entry_id: str | None  # set when outcome == "answer"
    suggestions: tuple[str, ...]  # entry ids: choices when "clarify", related questions when "answer"
    complaint_kind: str = ""  # set when outcome == "complaint"


class FaqMatcher:
    """Turns the retriever's analysis into one of the outcomes."""

    def __init__(self, retriever: Retriever, thresholds: ThresholdConfig) -> None:
        self.retriever = retriever
        self.thresholds = thresholds

    def match(self, text: str) -> FaqMatch:
        return self.decide(self.retriever.analyze(text, k=max(3, self.thresholds.max_suggestions)))

    def decide(self, analysis: Analysis) -> FaqMatch:
        t = self.thresholds
        candidates = analysis.candidates
        top_score = candidates[0].score if candidates else 0.0
        if analysis.complaint >= t.complaint:
            return FaqMatch("complaint", analysis.complaint, candidates, None, (), analysis.complaint_kind)
        if not candidates:
            return FaqMatch("off_topic" if analysis.off_topic >= t.off_topic else "none", 0.0, (), None, ())
        top = candidates[0]
        runner_up = candidates[1].score if len(candidates) > 1 else 0.0
        if top.score >= t.answer and top.score - runner_up >= t.clarify_margin:
            related = tuple(c.entry_id for c in candidates[1:t.max_suggestions] if c.score >= t.related_min)
            return FaqMatch("answer", top.score, candidates, top.entry_id, related)
        if analysis.off_topic >= t.off_topic:
            return FaqMatch("off_topic", top_score, candidates, None, ())
        if analysis.complaint >= t.complaint_unsure:
            return FaqMatch("complaint", analysis.complaint, candidates, None, (), analysis.complaint_kind)
        offered = candidates[: max(2, t.max_suggestions)]
        if len(offered) >= 2 and sum(c.score for c in offered) >= t.clarify:
            chosen = [c for c in offered if c.score >= t.suggestion_min]
            if len(chosen) < 2:
                chosen = list(offered[:2])
            return FaqMatch("clarify", top.score, candidates, None, tuple(c.entry_id for c in chosen))
        return FaqMatch("none", top.score, candidates, None, ())
