"""The lexical index computes scikit-learn's TfidfVectorizer numbers over Kefu's features without
importing scikit-learn at run time: the vectorizer is the reference here, on the shop KB."""

from __future__ import annotations

import json
from collections.abc import Sequence

import numpy as np
import pytest
from numpy.typing import NDArray
from scipy import sparse
from sklearn.feature_extraction.text import TfidfVectorizer

from knowledge.lexical import LexicalIndex, features
from knowledge.schema import load_kb
from tests.conftest import SHARED as SHARED_DATA

SHARED = SHARED_DATA / "eval"
SHOP_KB = SHARED / "shop-kb.yaml"


class SklearnIndex:
    """scikit-learn's TfidfVectorizer over Kefu's features: the reference LexicalIndex must equal."""

    def __init__(self, texts: Sequence[str]) -> None:
        self.vectorizer = TfidfVectorizer(analyzer=features, sublinear_tf=True, smooth_idf=True, norm="l2",
                                          dtype=np.float32)
        self.matrix = sparse.csr_matrix(self.vectorizer.fit_transform(texts), dtype=np.float32)

    def transform(self, texts: Sequence[str]) -> sparse.csr_matrix:
        return sparse.csr_matrix(self.vectorizer.transform(list(texts)), dtype=np.float32)

    def scores(self, text: str) -> NDArray[np.float32]:
        return np.asarray((self.matrix @ self.transform([text]).T).toarray()).ravel().astype(np.float32)


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
def test_scores_equal_sklearns_tf_idf_on_the_shop_kb() -> None:
    texts, queries = shop_texts()
    new, old = LexicalIndex(texts), SklearnIndex(texts)
    assert new.matrix.shape == old.matrix.shape and new.matrix.dtype == np.float32
    assert abs(new.matrix - old.matrix).max() < 1e-6
    for query in queries:
        got, want = new.scores(query), old.scores(query)
        assert got.dtype == np.float32
        np.testing.assert_allclose(got, want, atol=1e-6, rtol=0, err_msg=query)
    assert abs(new.transform(queries[:50]) - old.transform(queries[:50])).max() < 1e-6


@pytest.mark.skipif(not SHOP_KB.exists(), reason="shared eval data not present")
def test_a_question_is_vectorised_as_the_fitted_vectorizer_would() -> None:
    """One question's row (the per-turn path) is sklearn's own ``transform`` row."""
    texts, queries = shop_texts()
    index, reference = LexicalIndex(texts), SklearnIndex(texts)
    for query in [*queries[:80], "", "退款退款退款", "REFUND refunds refunded"]:
        assert abs(index.vector(query) - reference.transform([query])).max() < 1e-6, query


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
