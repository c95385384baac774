"""The lexical index is scikit-learn's TfidfVectorizer over Kefu's features: its scores equal
those of the hand-written TF-IDF it replaced (kept here as the reference) on the shop KB."""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Sequence

import numpy as np
import pytest
from numpy.typing import NDArray
from scipy import sparse

from knowledge.lexical import LexicalIndex, features
from knowledge.schema import load_kb
from tests.conftest import SHARED as SHARED_DATA

SHARED = SHARED_DATA / "eval"
SHOP_KB = SHARED / "shop-kb.yaml"


class HandWrittenIndex:
    """The hand-written TF-IDF that LexicalIndex replaced, verbatim: the reference its scores must equal."""

    def __init__(self, texts: Sequence[str]) -> None:
        docs = [Counter(features(t)) for t in texts]
        df: Counter[str] = Counter()
        for doc in docs:
            df.update(doc.keys())
        n = len(docs)
        self._vocab = {term: i for i, term in enumerate(sorted(df))}
        self._idf = np.array([math.log((1 + n) / (1 + df[t])) + 1.0 for t in sorted(df)], dtype=np.float32)
        rows: list[int] = []
        cols: list[int] = []
        vals: list[float] = []
        for r, doc in enumerate(docs):
            for term, tf in doc.items():
                col = self._vocab[term]
                rows.append(r)
                cols.append(col)
                vals.append((1.0 + math.log(tf)) * float(self._idf[col]))
        matrix = sparse.csr_matrix(
            (np.array(vals, dtype=np.float32), (rows, cols)), shape=(n, max(len(self._vocab), 1))
        )
        norms = np.sqrt(np.asarray(matrix.multiply(matrix).sum(axis=1)).ravel())
        norms[norms == 0] = 1.0
        self._matrix = sparse.csr_matrix(sparse.diags(1.0 / norms) @ matrix, dtype=np.float32)
        self._matrix_t = self._matrix.T.tocsr()

    def vector(self, text: str) -> sparse.csr_matrix:
        """The L2-normalised TF-IDF row of ``text`` (unknown terms are ignored)."""
        counts = Counter(f for f in features(text) if f in self._vocab)
        if not counts:
            return sparse.csr_matrix((1, self._matrix.shape[1]), dtype=np.float32)
        cols = [self._vocab[t] for t in counts]
        vals = np.array([(1.0 + math.log(tf)) * float(self._idf[self._vocab[t]]) for t, tf in counts.items()],
                        dtype=np.float32)
        vals /= float(np.linalg.norm(vals)) or 1.0
        return sparse.csr_matrix((vals, ([0] * len(cols), cols)), shape=(1, self._matrix.shape[1]))

    def scores(self, text: str) -> NDArray[np.float32]:
        """Cosine of ``text`` against every indexed text, shape ``(n,)``."""
        vec = self.vector(text)
        if vec.nnz == 0:
            return np.zeros(self._matrix.shape[0], dtype=np.float32)
        return np.asarray((self._matrix @ vec.T).toarray()).ravel().astype(np.float32)

    @property
    def matrix(self) -> sparse.csr_matrix:
        """The ``(n, vocabulary)`` matrix of normalised rows (used to train the classifier)."""
        return self._matrix

    def transform(self, texts: Sequence[str]) -> sparse.csr_matrix:
        return sparse.vstack([self.vector(t) for t in texts]).tocsr()


def shop_texts() -> tuple[list[str], list[str]]:
    """Every phrasing of the shop KB (the index), and queries: the phrasings, the dev cases, odd texts."""
    kb = load_kb(SHOP_KB)
    texts = [q for entry in kb.active for q in entry.questions]
    queries = list(texts)
    cases = SHARED / "shop-dev-cases.jsonl"
    if cases.exists():
        queries += [json.loads(line)["text"] for line in cases.read_text(encoding="utf-8").splitlines() if line.strip()]
    queries += ["", "   ", "的了吗", "zzzz qqqq", "退款 refund refunds refunding", "ＡＢＣ全角 Orders!!"]
    return texts, queries


@pytest.mark.skipif(not SHOP_KB.exists(), reason="shared eval data not present")
def test_scores_equal_the_hand_written_tf_idf_on_the_shop_kb() -> None:
    texts, queries = shop_texts()
    new, old = LexicalIndex(texts), HandWrittenIndex(texts)
    assert new.matrix.shape == old.matrix.shape and new.matrix.dtype == np.float32
    assert abs(new.matrix - old.matrix).max() < 1e-6
    for query in queries:
        got, want = new.scores(query), old.scores(query)
        assert got.dtype == np.float32
        np.testing.assert_allclose(got, want, atol=1e-6, rtol=0, err_msg=query)
    assert abs(new.transform(queries[:50]) - old.transform(queries[:50])).max() < 1e-6


def test_a_question_is_vectorised_as_the_fitted_vectorizer_would() -> None:
    """The per-question fast path (no input checks) gives sklearn's own ``transform`` row."""
    texts, queries = shop_texts()
    index = LexicalIndex(texts)
    for query in [*queries[:80], "", "退款退款退款", "REFUND refunds refunded"]:
        assert abs(index.vector(query) - index.transform([query])).max() < 1e-6, query


def test_texts_without_features_match_nothing() -> None:
    for texts in ([], ["的", "吗"], ["the", "a an"]):
        index = LexicalIndex(texts)
        assert index.matrix.shape == (len(texts), 1)
        assert not index.scores("退款").any() and index.vector("退款").nnz == 0


def test_repeats_count_sublinearly() -> None:
    """tf is 1 + log(count): three "refund"s weigh more than one, far less than three times."""
    index = LexicalIndex(["refund refund refund", "refund order", "order"])
    scores = index.scores("refund")
    assert scores[0] > scores[1] > scores[2] == 0.0
