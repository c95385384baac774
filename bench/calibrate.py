"""Refit the retriever's combination constants and show how the thresholds trade off.

    python -m bench.calibrate            # dev data only: shop dev, CLINC150 val, Banking77 train split

Fits ``ALPHA`` (cosine weight), ``TAU`` (none-option cosine) and ``BETA`` (classifier weight)
of :func:`knowledge.search.combine` by maximum likelihood — the target is the expected entry,
or "none / out-of-scope" for out-of-scope cases, in-scope and out-of-scope weighted equally per
set — on three development sets of very different shape (40 bilingual entries with 3 phrasings;
150 intents with 100; 77 confusable banking intents with 10% of their training phrasings held
out).  Then prints answered-correct / answered-wrong / out-of-scope-answered for a grid of
``ThresholdConfig`` values through the real :class:`FaqMatcher`.  Never touches a test set.
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

from bench.intents import CACHE, DATA, Case
from bot.config import ThresholdConfig
from bot.types import Candidate
from intents.faq import FaqMatcher
from knowledge import search
from knowledge.schema import Entry, KnowledgeBase, build_kb, load_kb
from knowledge.search import OUT_OF_SCOPE, Retriever, build_retriever, combine


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


class _Fixed:
    def __init__(self, cands: list[Candidate]) -> None:
        self.cands = cands

    def search(self, text: str, k: int = 5) -> list[Candidate]:
        return self.cands[:k]


def sweep(s: Signals, grid: Sequence[ThresholdConfig]) -> None:
    p = probabilities(s, (search.ALPHA, search.TAU, search.BETA))
    ranked = []
    for row in p:
        order = [i for i in np.argsort(-row[:-1]) if s.labels[i] != OUT_OF_SCOPE][:5]
        ranked.append([Candidate(s.labels[i], float(row[i])) for i in order])
    inside = s.target >= 0
    for t in grid:
        ok = wrong = oos_answered = clarify = 0
        for cands, target in zip(ranked, s.target, strict=True):
            m = FaqMatcher(cast(Retriever, _Fixed(cands)), t).match("")
            clarify += m.outcome == "clarify"
            if m.outcome != "answer":
                continue
            if target < 0:
                oos_answered += 1
            elif m.entry_id == s.labels[target]:
                ok += 1
            else:
                wrong += 1
        n_in, n_out = int(inside.sum()), int((~inside).sum())
        print(f"  {s.name:10} answer={t.answer:.2f} margin={t.clarify_margin:.2f} clarify={t.clarify:.2f}: "
              f"answered-correct {100 * ok / n_in:5.1f}%  answered-wrong {100 * wrong / n_in:4.1f}%  "
              f"clarify {100 * clarify / len(s.target):4.1f}%  "
              + (f"oos answered {100 * oos_answered / n_out:4.1f}%" if n_out else ""))


def _cases(path: Path) -> list[Case]:
    return [Case(**json.loads(line)) for line in path.read_text(encoding="utf-8").splitlines() if line]


def main() -> int:
    shop = collect("shop-dev", load_kb(DATA / "eval/shop-kb.yaml"), _cases(DATA / "eval/shop-dev-cases.jsonl"))
    oos = [t.strip() for t in (DATA / "public/clinc150/oos-train.txt").read_text().splitlines() if t.strip()]
    clinc = collect("clinc-val", load_kb(DATA / "public/clinc150/kb.yaml"),
                    _cases(DATA / "public/clinc150/val-cases.jsonl"), oos)
    rng = random.Random(0)
    train, held = [], []
    for e in load_kb(DATA / "public/banking77/kb.yaml").entries:
        qs = list(e.questions)
        rng.shuffle(qs)
        k = max(1, len(qs) // 10)
        held += [Case(q, e.id) for q in qs[:k]]
        train.append(Entry(e.id, tuple(qs[k:]), e.answer))
    banking = collect("b77-split", build_kb(train), held)
    sets = [shop, clinc, banking]
    fit = minimize(nll, (search.ALPHA, search.TAU, search.BETA), args=(sets,), method="Nelder-Mead")
    print(f"fitted ALPHA={fit.x[0]:.2f} TAU={fit.x[1]:.3f} BETA={fit.x[2]:.2f} (nll {fit.fun:.4f}); "
          f"in use ALPHA={search.ALPHA} TAU={search.TAU} BETA={search.BETA} "
          f"(nll {nll((search.ALPHA, search.TAU, search.BETA), sets):.4f})")
    grid = [ThresholdConfig(answer=a, clarify=c, clarify_margin=m)
            for a in (0.4, 0.5, 0.6, 0.7) for m in (0.1, 0.35) for c in (0.3,)]
    for s in sets:
        sweep(s, grid)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
