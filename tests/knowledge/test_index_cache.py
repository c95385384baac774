"""The embedding cache: append-only segments, a bounded folder, peers' vectors reused, the old
one-file format still read."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from knowledge import index_cache
from knowledge.index_cache import EmbeddingCache


def vectors(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, 384)).astype(np.float32)


def test_a_save_appends_one_segment_and_leaves_the_others_alone(tmp_path: Path) -> None:
    cache = EmbeddingCache(tmp_path, "m")
    big = [f"phrasing {i}" for i in range(1000)]
    cache.put(big, vectors(1000))
    cache.save()
    [first] = cache.segment_files()
    stamp = first.stat().st_mtime_ns
    cache.put(["an edited phrasing", "phrasing 3"], vectors(2, 1))  # one new text, one known
    cache.save()
    files = cache.segment_files()
    assert len(files) == 2 and files[0] == first and first.stat().st_mtime_ns == stamp
    assert np.load(files[1]).shape == (1,)  # only the new vector was written
    cache.save()  # nothing new: nothing written
    assert len(cache.segment_files()) == 2
    again = EmbeddingCache(tmp_path, "m")
    found, missing = again.get([*big, "an edited phrasing"])
    assert missing == [] and np.array_equal(found[3], vectors(1000)[3])


def test_many_edits_do_not_grow_the_folder_past_a_bound(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(index_cache, "MAX_SEGMENTS", 4)
    cache = EmbeddingCache(tmp_path, "m")
    texts = [f"edit {i}" for i in range(30)]
    for i, text in enumerate(texts):
        cache.put([text], vectors(1, i))
        cache.save()
        assert len(cache.segment_files()) <= 5
    assert not list(cache.folder.glob("*.tmp"))
    found, missing = EmbeddingCache(tmp_path, "m").get(texts)
    assert missing == [] and all(np.array_equal(found[i], vectors(1, i)[0]) for i in range(30))


def test_merging_keeps_the_newest_vectors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(index_cache, "MAX_VECTORS", 5)
    cache = EmbeddingCache(tmp_path, "m")
    for i in range(8):
        cache.put([f"t{i}"], vectors(1, i))
        cache.save()
    cache.compact()
    assert len(cache.segment_files()) == 1
    found, missing = EmbeddingCache(tmp_path, "m").get([f"t{i}" for i in range(8)])
    assert missing == [0, 1, 2] and sorted(found) == [3, 4, 5, 6, 7]


def test_a_peer_workers_vectors_are_found_without_embedding(tmp_path: Path) -> None:
    mine, peer = EmbeddingCache(tmp_path, "m"), EmbeddingCache(tmp_path, "m")
    peer.put(["embedded by the other worker"], vectors(1))
    peer.save()
    found, missing = mine.get(["embedded by the other worker", "nobody has this"])
    assert missing == [1] and np.array_equal(found[0], vectors(1)[0])


def test_the_one_file_cache_of_older_versions_is_read_and_merged_away(tmp_path: Path) -> None:
    keys = np.array([np.frombuffer(index_cache.text_key(t), dtype=np.uint8) for t in ("old a", "old b")])
    index_cache.atomic_write_npz(tmp_path / "embeddings-m.npz", keys=keys, vectors=vectors(2))
    cache = EmbeddingCache(tmp_path, "m")
    assert cache.get(["old a", "old b"])[1] == []
    cache.put(["new"], vectors(1, 5))
    cache.save()
    cache.compact()
    assert not (tmp_path / "embeddings-m.npz").exists() and len(cache.segment_files()) == 1
    assert EmbeddingCache(tmp_path, "m").get(["old a", "old b", "new"])[1] == []
