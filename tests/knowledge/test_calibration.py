"""Per-knowledge-base calibration: fitted on held-out phrasings, judged by the decisions it makes."""

from __future__ import annotations

import numpy as np

from bot.config import ThresholdConfig
from knowledge.calibration import MIN_HELD_OUT, Calibration, HeldOut, fit
from knowledge.search import DEFAULT_CALIBRATION, combine

LABELS = 20


def confusable(phrasings: int = 40, whole: int = 400, seed: int = 0) -> HeldOut:
    """Held-out texts of a knowledge base like Banking77: every entry has a close neighbour (its
    held-out phrasings lead, but not by far), and the entries held out whole — ten times as many
    texts — mostly sit between two kept entries; a fifth of them lean to one of the two."""
    rng = np.random.default_rng(seed)
    n = phrasings + whole
    best = (0.78 + 0.02 * rng.standard_normal((n, LABELS))).astype(np.float32)
    logp = np.full((n, LABELS), -7.0) + 0.3 * rng.standard_normal((n, LABELS))
    target = np.full(n, -1, dtype=np.int64)
    for i in range(phrasings):
        t, neighbour = i % LABELS, (i + 1) % LABELS
        target[i] = t
        best[i, t], best[i, neighbour] = 0.86, 0.852
        logp[i, t], logp[i, neighbour] = -0.6, -1.0
    for i in range(phrasings, n):
        a, b = i % LABELS, (i + 7) % LABELS
        lean = i % 5 == 0
        best[i, a], best[i, b] = 0.86, 0.852 if lean else 0.86
        logp[i, a], logp[i, b] = (-0.6, -1.0) if lean else (-0.9, -0.9)
    group = np.where(target >= 0, 0, 1).astype(np.int64)
    return HeldOut(best, logp, target, group)


def answered(held: HeldOut, c: Calibration, rows: np.ndarray) -> tuple[float, float]:
    """Shares of ``rows`` answered at all, and answered with their target, at the default thresholds."""
    t = ThresholdConfig()
    some = right = 0
    for i in rows:
        p = combine(held.best[i], held.logp[i], dense=True, alpha=c.alpha, tau=c.tau, beta=c.beta)[:-1]
        first, second = np.sort(p)[::-1][:2]
        if first >= t.answer and first - second >= t.clarify_margin:
            some += 1
            right += int(np.argmax(p)) == held.target[i]
    return some / len(rows), right / len(rows)


def test_confusable_held_out_phrasings_still_get_answers() -> None:
    """The entries held out whole (900 texts on Banking77 against 70 phrasings) must not outvote
    the held-out phrasings: counted per text, they chose the defaults, which answer none of them."""
    held = confusable()
    assert answered(held, DEFAULT_CALIBRATION, np.flatnonzero(held.group == 0)) == (0.0, 0.0)
    c = fit(held, DEFAULT_CALIBRATION)
    assert answered(held, c, np.flatnonzero(held.group == 0))[1] >= 0.9, c
    # the questions the knowledge base lacks: only those leaning to one entry get its answer
    assert answered(held, c, np.flatnonzero(held.group == 1))[0] <= 0.2, c


def test_a_fit_is_deterministic() -> None:
    held = confusable()
    assert fit(held, DEFAULT_CALIBRATION) == fit(held, DEFAULT_CALIBRATION)
    assert fit(held, DEFAULT_CALIBRATION).held_out == len(held.target)


def test_too_few_held_out_phrasings_keep_the_defaults() -> None:
    held = confusable(phrasings=MIN_HELD_OUT - 1, whole=50)
    assert fit(held, DEFAULT_CALIBRATION) is DEFAULT_CALIBRATION
