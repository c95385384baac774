"""Lexical matching that works for Chinese (no spaces) and English alike.

Chinese runs become character 1–3-grams (a jieba-free segmentation that still rewards
matching words such as 退款 or 发票 through the bigrams); Latin runs become lower-cased
words, light-stemmed, plus word bigrams and in-word character 3–4-grams so plurals and
typos still overlap.  The index is a TF-IDF (sublinear tf, smoothed idf) matrix whose rows are
L2-normalised, so a dot product is a cosine in [0, 1].  Building it for 15,000 phrasings
takes about a second, so after an edit it is simply rebuilt rather than patched.

These are exactly scikit-learn's ``TfidfVectorizer(analyzer=features, sublinear_tf=True)``
numbers (``tests/knowledge/test_lexical.py`` holds it to them to 1e-6), computed here because
importing ``sklearn.feature_extraction`` costs every worker 68 MB and 1.1 s at start and its
``transform`` 0.6 ms of input checks per question, on every turn's path (docs/benchmarks.md,
"Structure (issue 13)").
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter
from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray
from scipy import sparse

_CJK = r"\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_TOKEN = re.compile(rf"[{_CJK}]+|[a-z0-9]+(?:'[a-z]+)?")
_IS_CJK = re.compile(rf"[{_CJK}]")

# Function words carry no intent; dropping them keeps "how do I" from matching everything.
_EN_STOP_WORDS = """a an the i me my we our you your it its is are was were be been am do does did to
of in on at for with and or can could would should will shall may might this that these those there here
please hi hello hey so just any some"""
_EN_STOP = frozenset(_EN_STOP_WORDS.split())
_ZH_STOP = frozenset("的了吗呢吧啊呀么是我你们他她它在有")
# Question scaffolding shared by most FAQ phrasings; removed before n-gramming so that
# "明天天气怎么样" does not match "怎么开发票" on 怎么 alone.
_ZH_FILLER = re.compile("怎么样|怎么办|怎么|怎样|什么|如何|为什么|可以|能不能|是不是|请问|一下|哪些|哪里|吗|呢|吧")


def normalize(text: str) -> str:
    """NFKC (full-width → ASCII) and lower-case; the first step of every tokenisation."""
    return unicodedata.normalize("NFKC", text).lower()


def _stem(word: str) -> str:
    if word.endswith("'s"):
        word = word[:-2]
    for suffix, keep in (("ies", "y"), ("ing", ""), ("ed", ""), ("es", ""), ("s", "")):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: len(word) - len(suffix)] + keep
    return word


def features(text: str) -> list[str]:
    """The lexical features of ``text`` (with repeats, so term frequency is kept)."""
    out: list[str] = []
    words: list[str] = []
    for token in _TOKEN.findall(_ZH_FILLER.sub(" ", normalize(text))):
        if _IS_CJK.match(token):
            chars = [c for c in token]
            for n in (1, 2, 3):
                for i in range(len(chars) - n + 1):
                    gram = "".join(chars[i : i + n])
                    if n == 1 and gram in _ZH_STOP:
                        continue
                    out.append(gram)
            words.clear()
            continue
        if token in _EN_STOP:
            continue
        stem = _stem(token)
        out.append("w:" + stem)
        if words:
            out.append(f"b:{words[-1]}_{stem}")
        words.append(stem)
        padded = f"<{stem}>"
        if len(stem) >= 4:
            for n in (3, 4):
                out.extend("c:" + padded[i : i + n] for i in range(len(padded) - n + 1))
    return out


class LexicalIndex:
    """TF-IDF cosine over a fixed list of texts (rebuilt, not patched, when texts change)."""

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
