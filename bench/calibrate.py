"""Refit the retriever's combination constants and show how the thresholds trade off.

    python -m bench.calibrate            # dev data only: shop dev, CLINC150 val, Banking77 train split

Fits ``ALPHA`` (cosine weight), ``TAU`` (none-option cosine) and ``BETA`` (classifier weight)
of :func:`knowledge.search.combine` by maximum likelihood — the target is the expected entry,
or "none / out-of-scope" for out-of-scope cases, in-scope and out-of-scope weighted equally per
set — on three development sets of very different shape (40 bilingual entries with 3 phrasings;
150 intents with 100; 77 confusable banking intents with 10% of their training phrasings held
out).  Then builds each set's retriever as ``kefu serve`` does (built-in examples, calibrated
to the knowledge base) and prints answered-correct / answered-wrong / clarify / handed off /
out-of-scope-answered for a grid of ``ThresholdConfig`` values through the real
:meth:`FaqMatcher.decide`.  Never touches a test set.
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import minimize
from tqdm import tqdm

from bench.intents import CACHE, DATA, Case, hybrid
from bot.config import ThresholdConfig
from intents.faq import FaqMatcher
from knowledge import search
from knowledge.schema import Entry, KnowledgeBase, build_kb, load_kb
from knowledge.search import OUT_OF_SCOPE, Analysis, Retriever, build_retriever, combine


@dataclass
class Signals:
    name: str
    labels: list[str]
    best: NDArray[np.float32]  # (cases, labels)
    logp: NDArray[np.float64]
    target: NDArray[np.int64]  # label index, -1 = out of scope


def collect(name: str, kb: KnowledgeBase, cases: Sequence[Case], out_of_scope: Sequence[str] = ()) -> Signals:
    retriever = build_retriever(kb, cache_dir=CACHE, out_of_scope=out_of_scope, progress=True)
    labels = retriever.labels
    best, logp, target = [], [], []
    for case in tqdm(cases, desc=name, leave=False):
        if case.expect == "handoff":
            continue
        b, lp, _ = retriever.signals(case.text)
        assert lp is not None
        best.append(b)
        logp.append(lp)
        target.append(labels.index(case.expect) if case.expect in labels else -1)
    return Signals(name, labels, np.array(best), np.array(logp), np.array(target))


def probabilities(s: Signals, params: Sequence[float]) -> NDArray[np.float64]:
    alpha, tau, beta = params
    return np.array([combine(b, lp, dense=True, alpha=alpha, tau=tau, beta=beta) for b, lp in zip(s.best, s.logp,
                                                                                                 strict=True)])


def nll(params: Sequence[float], sets: Sequence[Signals]) -> float:
    total = 0.0
    for s in sets:
        p = probabilities(s, params)
        none = p[:, -1].copy()
        if OUT_OF_SCOPE in s.labels:
            none += p[:, s.labels.index(OUT_OF_SCOPE)]
        inside = s.target >= 0
        hit = np.where(inside, p[np.arange(len(p)), np.maximum(s.target, 0)], none)
        if (~inside).any():
            weights = np.where(inside, 0.5 / inside.sum(), 0.5 / (~inside).sum())
        else:
            weights = np.full(len(p), 1 / len(p))
        total -= float((weights * np.log(hit + 1e-12)).sum())
    return total


def sweep(name: str, kb: KnowledgeBase, cases: Sequence[Case], grid: Sequence[ThresholdConfig],
          out_of_scope: Sequence[str] = ()) -> None:
    """The decisions of the served retriever (calibrated to ``kb``) at every point of ``grid``."""
    retriever = hybrid(kb, CACHE, out_of_scope)
    c = retriever.calibration
    print(f"  {name}: calibration alpha={c.alpha:.1f} tau={c.tau:.3f} beta={c.beta:.2f} ({c.held_out} held out)")
    kept = [case for case in cases if case.expect != "handoff"]
    analyses: list[Analysis] = [retriever.analyze(case.text, k=5) for case in tqdm(kept, desc=name, leave=False)]
    n_in = sum(case.expect != "no-answer" for case in kept)
    n_out = len(kept) - n_in
    for t in grid:
        matcher = FaqMatcher(cast(Retriever, None), t)
        ok = wrong = oos_answered = clarify = none = 0
        for case, analysis in zip(kept, analyses, strict=True):
            m = matcher.decide(analysis)
            if case.expect == "no-answer":
                oos_answered += m.outcome == "answer"
                continue
            clarify += m.outcome == "clarify"
            none += m.outcome == "none"
            ok += m.outcome == "answer" and m.entry_id == case.expect
            wrong += m.outcome == "answer" and m.entry_id != case.expect
        print(f"  {name:10} answer={t.answer:.2f} margin={t.clarify_margin:.2f} clarify={t.clarify:.2f}: "
              f"answered-correct {100 * ok / n_in:5.1f}%  answered-wrong {100 * wrong / n_in:4.1f}%  "
              f"clarify {100 * clarify / n_in:4.1f}%  none {100 * none / n_in:4.1f}%  "
              + (f"oos answered {100 * oos_answered / n_out:4.1f}%" if n_out else ""))


def _cases(path: Path) -> list[Case]:
    return [Case(**json.loads(line)) for line in path.read_text(encoding="utf-8").splitlines() if line]


def main() -> int:
    shop_kb, shop_cases = load_kb(DATA / "eval/shop-kb.yaml"), _cases(DATA / "eval/shop-dev-cases.jsonl")
    oos = [t.strip() for t in (DATA / "public/clinc150/oos-train.txt").read_text().splitlines() if t.strip()]
    clinc_kb, clinc_cases = load_kb(DATA / "public/clinc150/kb.yaml"), _cases(DATA / "public/clinc150/val-cases.jsonl")
    rng = random.Random(0)
    train, held = [], []
    for e in load_kb(DATA / "public/banking77/kb.yaml").entries:
        qs = list(e.questions)
        rng.shuffle(qs)
        k = max(1, len(qs) // 10)
        held += [Case(q, e.id) for q in qs[:k]]
        train.append(Entry(e.id, tuple(qs[k:]), e.answer))
    banking_kb = build_kb(train)
    sets = [collect("shop-dev", shop_kb, shop_cases), collect("clinc-val", clinc_kb, clinc_cases, oos),
            collect("b77-split", banking_kb, held)]
    fit = minimize(nll, (search.ALPHA, search.TAU, search.BETA), args=(sets,), method="Nelder-Mead")
    print(f"default constants: fitted ALPHA={fit.x[0]:.2f} TAU={fit.x[1]:.3f} BETA={fit.x[2]:.2f} (nll {fit.fun:.4f}); "
          f"in use ALPHA={search.ALPHA} TAU={search.TAU} BETA={search.BETA} "
          f"(nll {nll((search.ALPHA, search.TAU, search.BETA), sets):.4f})")
    grid = [ThresholdConfig(answer=a, clarify_margin=m) for a in (0.3, 0.35, 0.4, 0.5) for m in (0.2, 0.3)]
    print("decisions of the calibrated retrievers:")
    sweep("shop-dev", shop_kb, shop_cases, grid)
    sweep("clinc-val", clinc_kb, clinc_cases, grid, oos)
    sweep("b77-split", banking_kb, held, grid)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
