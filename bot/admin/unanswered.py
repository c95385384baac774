"""Unanswered questions, grouped by meaning, and the regression check run before a change is saved.

Clustering is greedy single-pass over unit vectors (sentence embeddings when the deployment
uses them, TF-IDF otherwise): a question joins the first cluster whose leader it resembles at
least ``threshold``.  Hundreds of questions cluster in milliseconds and the result is stable,
which matters more to an admin clicking through than an optimal partition.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from bot.config import Config
from bot.runtime import LiveKnowledge, layer_on
from bot.storage.records import AdminRecords
from bot.types import Conversation, Decision, InboundMessage
from intents.base import IntentLayer
from knowledge.lexical import LexicalIndex
from knowledge.schema import Entry, KnowledgeBase, build_kb

LEXICAL_THRESHOLD = 0.5
DENSE_THRESHOLD = 0.88


@dataclass(frozen=True)
class Cluster:
    id: str
    label: str  # the most frequent phrasing
    count: int
    phrasings: tuple[tuple[str, int], ...]  # distinct texts with their counts, most frequent first
    reasons: dict[str, int]
    suggested_entry: str | None  # the entry the bot leaned towards most often
    last_at: float

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "label": self.label, "count": self.count,
                "phrasings": [{"text": t, "count": n} for t, n in self.phrasings],
                "reasons": self.reasons, "suggested_entry": self.suggested_entry, "last_at": self.last_at}


def _vectors(texts: Sequence[str], dense: bool) -> np.ndarray[Any, np.dtype[np.float32]]:
    if dense:
        from knowledge.embeddings import get_embedder

        vecs: np.ndarray[Any, np.dtype[np.float32]] = np.asarray(get_embedder().query(list(texts)),
                                                                 dtype=np.float32)
        norms = np.linalg.norm(vecs, axis=1, keepdims=True)
        norms[norms == 0] = 1.0
        normalised: np.ndarray[Any, np.dtype[np.float32]] = (vecs / norms).astype(np.float32)
        return normalised
    index = LexicalIndex(texts)
    dense_rows: np.ndarray[Any, np.dtype[np.float32]] = np.asarray(index.matrix.toarray(), dtype=np.float32)
    return dense_rows


def cluster_records(records: Sequence[dict[str, Any]], *, dense: bool = False,
                    threshold: float | None = None) -> list[Cluster]:
    """Group unanswered records by meaning; biggest cluster first."""
    counts = Counter(str(r["text"]).strip() for r in records if str(r.get("text", "")).strip())
    if not counts:
        return []
    texts = [t for t, _ in counts.most_common()]
    vecs = _vectors(texts, dense)
    limit = threshold if threshold is not None else (DENSE_THRESHOLD if dense else LEXICAL_THRESHOLD)
    leaders: list[int] = []
    members: list[list[str]] = []
    for i, text in enumerate(texts):
        if leaders:
            sims = vecs[leaders] @ vecs[i]
            best = int(np.argmax(sims))
            if float(sims[best]) >= limit:
                members[best].append(text)
                continue
        leaders.append(i)
        members.append([text])
    by_text: dict[str, list[dict[str, Any]]] = {}
    for r in records:
        by_text.setdefault(str(r.get("text", "")).strip(), []).append(r)
    clusters = []
    for group in members:
        rows = [r for t in group for r in by_text.get(t, [])]
        leaning = Counter(str(r["entry_id"] or (r.get("candidates") or [None])[0] or "") for r in rows)
        leaning.pop("", None)
        label = group[0]
        clusters.append(Cluster(
            id=hashlib.sha1(label.encode("utf-8")).hexdigest()[:10], label=label, count=len(rows),
            phrasings=tuple((t, counts[t]) for t in group),
            reasons=dict(Counter(str(r.get("reason", "")) for r in rows)),
            suggested_entry=leaning.most_common(1)[0][0] if leaning else None,
            last_at=max(float(r.get("at", 0)) for r in rows)))
    clusters.sort(key=lambda c: (-c.count, -c.last_at))
    return clusters


class UnansweredBook:
    """The recorded unanswered questions (kept by :class:`~bot.storage.records.AdminRecords`)."""

    def __init__(self, records: AdminRecords) -> None:
        self.store = records

    async def records(self, since: float = 0.0) -> list[dict[str, Any]]:
        return await self.store.unanswered(since)

    async def resolve(self, texts: Sequence[str]) -> int:
        """Drop the records of these texts (they became knowledge); returns how many went."""
        return await self.store.resolve(texts)

    async def recent_questions(self, limit: int = 300) -> list[str]:
        """Distinct recent customer questions, newest first, for regression replays."""
        return await self.store.recent_questions(limit)


def probe(text: str) -> Conversation:
    """A fresh conversation to classify ``text`` in, as a new customer's first message would be."""
    return Conversation.start(InboundMessage("admin", "admin-probe", "admin-probe", text, "", 0.0))


def decision_json(decision: Decision, kb: KnowledgeBase) -> dict[str, Any]:
    entry = kb.get(decision.entry_id) if decision.entry_id else None
    return {
        "action": decision.action.value, "language": decision.language, "intent": decision.intent,
        "confidence": round(decision.confidence, 4), "entry_id": decision.entry_id,
        "answer": entry.answer_in(decision.language) if entry else None,
        "suggestions": list(decision.suggestions), "reason": decision.reason, "detail": decision.detail,
        "candidates": [{"entry_id": c.entry_id, "score": round(c.score, 4), "question": c.question}
                       for c in decision.candidates],
    }


def outcome(decision: Decision) -> str:
    """A short comparable form of a decision: what the customer would get."""
    if decision.entry_id:
        return f"{decision.action.value}:{decision.entry_id}"
    if decision.suggestions:
        return f"{decision.action.value}:{','.join(decision.suggestions)}"
    return decision.action.value


def proposed_layer(live: LiveKnowledge, changes: dict[str, Entry | None], config: Config) -> tuple[IntentLayer,
                                                                                                   KnowledgeBase]:
    """The intent layer the knowledge base would have after ``changes`` (nothing is saved)."""
    entries = [changes.get(e.id, e) for e in live.kb.entries]
    known = {e.id for e in live.kb.entries}
    entries += [e for eid, e in changes.items() if eid not in known]
    kb = build_kb([e for e in entries if e is not None], "proposal")
    if live.retriever is None:
        from bot.runtime import build_live_layer

        return build_live_layer(kb, config)[0], kb
    upserts = [entry for entry in changes.values() if entry is not None]
    removed = [entry_id for entry_id, entry in changes.items() if entry is None]
    return layer_on(live.retriever.updated(upserts, removed), kb, config), kb


def replay(live: LiveKnowledge, changes: dict[str, Entry | None], config: Config,
           questions: Sequence[str]) -> dict[str, Any]:
    """Which of ``questions`` the proposed change would answer differently (CPU-bound)."""
    layer, kb = proposed_layer(live, changes, config)
    changed = []
    for text in questions:
        before = live.layer.decide(text, probe(text))
        after = layer.decide(text, probe(text))
        if outcome(before) != outcome(after):
            changed.append({"text": text, "before": decision_json(before, live.kb),
                            "after": decision_json(after, kb)})
    return {"replayed": len(questions), "changed": changed}
