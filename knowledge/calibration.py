"""Fit the retriever's confidence to *this* knowledge base, from its own phrasings.

One set of constants fitted across very different datasets is a compromise that every FAQ pays
for: a 40-entry bilingual shop, a 150-intent assistant and a 1,000-entry one-question-each FAQ
want different weights for the classifier and a different "none of these" level.  So when an
index is built, Kefu holds out part of its own knowledge and asks how well the rest recognises it:

* a tenth of the phrasings (at least one) of most entries with two or more: the target is that entry;
* every phrasing of a few whole entries: the target is "none of these" — a question in the
  business's domain that the knowledge base does not answer, which must not be answered;
* a fifth of the off-topic examples: the target is the off-topic class.

A classifier trained on the rest scores them, and ``ALPHA`` (cosine weight), ``TAU`` (none level)
and ``BETA`` (classifier weight) of :func:`knowledge.search.combine` are fitted by maximum
likelihood (the groups weighted 2:1:1).  A likelihood fit says how sure to be on average, not what
to do; so the defaults, the fit and sharper versions of it then compete on the decisions they make
for the held-out phrasings and off-topic examples (right answers minus three per wrong one, as a
rate per group, weighted 2:1), and the best is kept.  The entries held out whole shape the "none"
level through the likelihood but do not judge: on a knowledge base of confusable intents
(Banking77, CLINC150) a missing intent's questions look like its neighbour's, and judged on them
every candidate that answers the neighbours' own phrasings lost — Banking77 was given constants
that answered 4 points fewer of its questions.
Thresholds in config (``intents.thresholds``) then mean
the same thing on every knowledge base.  Too little held-out data (a handful of entries) keeps the
defaults.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

log = logging.getLogger(__name__)

VERSION = "v2"  # part of the cached calibration's file name: a change to the fit refits
MIN_HELD_OUT = 12  # fewer held-out phrasings of kept entries than this: keep the default constants
BOUNDS = ((8.0, 120.0), (0.3, 0.97), (0.1, 4.0))  # alpha, tau, beta
# Shares of the log-loss: recognising the entries' own held-out phrasings matters most; not
# answering a question the knowledge base lacks, and the special classes, share the rest.
GROUP_WEIGHTS = (0.5, 0.25, 0.25)
# Shares of the decision score (see _decision_score): the entries held out whole are left out.
DECISION_WEIGHTS = (0.5, 0.0, 0.25)
TOP = 48  # labels kept per held-out text while fitting (the rest carry no probability)
SHARPER = (1.5, 2.0, 3.0)  # scales of the fit also tried: a likelihood fit is often too unsure to answer
WRONG_COST = 3.0  # a wrong answer costs three right ones (the customer acts on it)
ANSWER, MARGIN = 0.35, 0.2  # the default intents.thresholds answer / clarify_margin the fit is judged at


@dataclass(frozen=True)
class Calibration:
    alpha: float
    tau: float
    beta: float
    held_out: int = 0  # texts it was fitted on; 0 = the built-in defaults


@dataclass(frozen=True)
class HeldOut:
    """Signals of held-out texts against an index that never saw them."""

    best: NDArray[np.float32]  # (texts, labels) best-phrasing cosine
    logp: NDArray[np.float64]  # (texts, labels) classifier log-probabilities
    target: NDArray[np.int64]  # label index; -1 = "none of these"
    group: NDArray[np.int64]  # 0 phrasing, 1 whole entry held out, 2 off-topic example
    # (texts, k): when only each text's k likeliest labels under the default constants are kept
    # (best first), the label of each column of ``best``/``logp``; None: every label, in order.
    # 3,000 texts x 20,000 labels in full are 720 MB, and the fit looks at the TOP likeliest only.
    columns: NDArray[np.int64] | None = None

    def likeliest(self, default: Calibration) -> tuple[NDArray[np.float32], NDArray[np.float64], NDArray[np.int64]]:
        """``best``, ``logp`` and the label of each column, for each text's TOP likeliest labels."""
        if self.columns is not None:
            return self.best, self.logp, self.columns
        keep = likeliest_columns(self.best, self.logp, default)
        rows = np.arange(len(keep))[:, None]
        return self.best[rows, keep], self.logp[rows, keep], keep


def fit(held: HeldOut, default: Calibration) -> Calibration:
    """Constants for ``held`` (maximum likelihood, then judged by the decisions they lead to), or
    ``default`` when there is too little of it."""
    from scipy.optimize import minimize

    if int((held.group == 0).sum()) < MIN_HELD_OUT:  # e.g. one question per entry: nothing to recognise
        return default
    best, logp, keep = held.likeliest(default)
    target = held.target
    right = keep == target[:, None]
    weights = np.zeros(len(keep))
    for g, share in enumerate(GROUP_WEIGHTS):
        if (held.group == g).any():
            weights[held.group == g] = share / int((held.group == g).sum())

    def nll(params: NDArray[np.float64]) -> float:
        alpha, tau, beta = params
        z = alpha * best + beta * logp
        none = np.full((len(z), 1), alpha * tau)
        full = np.hstack([z, none])
        full -= full.max(axis=1, keepdims=True)
        p = np.exp(full)
        p /= p.sum(axis=1, keepdims=True)
        hit = np.where(target >= 0, (p[:, :-1] * right).sum(axis=1), p[:, -1])
        return float(-(weights * np.log(hit + 1e-12)).sum())

    start = np.array([default.alpha, default.tau, default.beta])
    fitted = minimize(nll, start, method="Nelder-Mead", bounds=BOUNDS,
                      options={"maxiter": 400, "xatol": 1e-3, "fatol": 1e-5}).x
    # The likelihood says how sure to be on average; what the customer meets is the decision.  So
    # the defaults, the fit and sharper versions of the fit compete on the held-out texts at the
    # default thresholds: answers right, minus WRONG_COST for every wrong one (an answer to a
    # held-out whole entry, or to an off-topic example, is wrong).
    candidates = [start, fitted, *(np.array([fitted[0] * k, fitted[1], fitted[2] * k]) for k in SHARPER)]
    scores = [_decision_score(c, best, logp, right, target, held.group) for c in candidates]
    alpha, tau, beta = (float(v) for v in candidates[int(np.argmax(scores))])
    log.info("calibrated on %d held-out texts: alpha=%.1f tau=%.3f beta=%.2f (held-out score %.3f; defaults %.3f)",
             len(keep), alpha, tau, beta, max(scores), scores[0])
    return Calibration(round(alpha, 3), round(tau, 4), round(beta, 3), len(keep))


def likeliest_columns(best: NDArray[np.float32], logp: NDArray[np.float64], default: Calibration,
                      block: int = 256) -> NDArray[np.int64]:
    """Each row's TOP likeliest labels under the default constants, best first; a block of rows at
    a time (3,000 texts x 20,000 labels sorted at once took 2 GB)."""
    n_labels = best.shape[1]
    keep = np.empty((len(best), min(TOP, n_labels)), dtype=np.int64)
    for start in range(0, len(best), block):
        logits = -(default.alpha * best[start:start + block] + default.beta * logp[start:start + block])
        if n_labels > TOP:
            part = np.argpartition(logits, TOP - 1, axis=1)[:, :TOP]
            order = np.argsort(np.take_along_axis(logits, part, axis=1), axis=1)
            keep[start:start + block] = np.take_along_axis(part, order, axis=1)
        else:
            keep[start:start + block] = np.argsort(logits, axis=1)
    return keep


def _decision_score(params: NDArray[np.float64], best: NDArray[np.float32], logp: NDArray[np.float64],
                    right: NDArray[np.bool_], target: NDArray[np.int64], group: NDArray[np.int64]) -> float:
    """(answered right - WRONG_COST x answered wrong) at ANSWER / MARGIN, as a rate per group and
    the groups weighted by DECISION_WEIGHTS — not per text, and without the entries held out
    whole: a tenth of Banking77's entries held out whole is 800 texts against 70 held-out
    phrasings, their questions look like a neighbour's, and counted so they made every confusable
    knowledge base look out of scope and chose the most cautious constants."""
    alpha, tau, beta = params
    z = np.hstack([alpha * best + beta * logp, np.full((len(best), 1), alpha * tau)])
    z -= z.max(axis=1, keepdims=True)
    p = np.exp(z)
    p /= p.sum(axis=1, keepdims=True)
    entries = p[:, :-1]
    order = np.argsort(-entries, axis=1)
    rows = np.arange(len(p))
    top, second = entries[rows, order[:, 0]], entries[rows, order[:, 1]] if entries.shape[1] > 1 else 0.0
    answered = (top >= ANSWER) & (top - second >= MARGIN)
    hit = right[rows, order[:, 0]] & (target >= 0)
    gain = (answered & hit & (group == 0)).astype(np.float64)
    gain -= WRONG_COST * (answered & ~hit)  # (an off-topic example given the off-topic class is neither)
    present = [g for g in range(len(DECISION_WEIGHTS)) if DECISION_WEIGHTS[g] and (group == g).any()]
    total = sum(DECISION_WEIGHTS[g] for g in present)
    return float(sum(DECISION_WEIGHTS[g] / total * gain[group == g].mean() for g in present))
