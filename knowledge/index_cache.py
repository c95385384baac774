"""On-disk cache of phrasing embeddings, keyed by (model id, hash of the phrasing text).

Embedding 15,000 phrasings takes minutes; keying each vector by its own text (not by the whole
knowledge base) means that after an admin edits one entry, a rebuild embeds only the new
phrasings.  One ``.npz`` file per model: written to a temporary file and renamed into place so
a crash never leaves half a file; a file that cannot be read (truncated, corrupted, another
version) is logged and treated as empty, then rewritten — a cache must never take the bot down.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import tempfile
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
from numpy.typing import NDArray

log = logging.getLogger(__name__)

MAX_VECTORS = 500_000  # ~770 MB at 384 floats; beyond this the oldest vectors are dropped


def text_key(text: str) -> bytes:
    """20-byte key of one phrasing's exact text."""
    return hashlib.sha1(text.encode("utf-8")).digest()


class EmbeddingCache:
    """Vectors by text for one model, persisted under ``cache_dir``."""

    def __init__(self, cache_dir: Path, model_id: str) -> None:
        safe = re.sub(r"[^A-Za-z0-9._-]+", "_", model_id)
        self.path = Path(cache_dir).expanduser() / f"embeddings-{safe}.npz"
        self._index: dict[bytes, int] = {}
        self._vectors: NDArray[np.float32] = np.zeros((0, 0), dtype=np.float32)
        self._dirty = False
        self._load()

    def _load(self) -> None:
        if not self.path.exists():
            return
        try:
            with np.load(self.path, allow_pickle=False) as data:
                keys = np.asarray(data["keys"])
                vectors = np.asarray(data["vectors"], dtype=np.float32)
            # keys are raw uint8 rows: numpy's bytes dtype would strip a digest's trailing NULs
            if keys.dtype != np.uint8 or keys.shape != (len(vectors), 20) or vectors.ndim != 2:
                raise ValueError("keys and vectors do not line up")
            index = {keys[i].tobytes(): i for i in range(len(keys))}
            if len(index) != len(keys):
                raise ValueError("duplicate keys")
            self._index = index
            self._vectors = vectors
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
            log.warning("embedding cache %s is unreadable (%s); rebuilding it", self.path, exc)
            self._index, self._vectors = {}, np.zeros((0, 0), dtype=np.float32)
            self._dirty = True

    def __len__(self) -> int:
        return len(self._index)

    def get(self, texts: Sequence[str]) -> tuple[dict[int, NDArray[np.float32]], list[int]]:
        """Cached vectors by position in ``texts``, and the positions that are missing."""
        found: dict[int, NDArray[np.float32]] = {}
        missing: list[int] = []
        for i, text in enumerate(texts):
            row = self._index.get(text_key(text))
            if row is None:
                missing.append(i)
            else:
                found[i] = self._vectors[row]
        return found, missing

    def put(self, texts: Sequence[str], vectors: NDArray[np.float32]) -> None:
        fresh: dict[bytes, NDArray[np.float32]] = {}
        for text, vector in zip(texts, vectors, strict=True):
            key = text_key(text)
            if key not in self._index:
                fresh.setdefault(key, vector)
        new = list(fresh.items())
        if not new:
            return
        block = np.asarray([v for _, v in new], dtype=np.float32)
        base = len(self._index)
        self._vectors = block if base == 0 else np.vstack([self._vectors, block])
        for offset, (key, _) in enumerate(new):
            self._index[key] = base + offset
        if len(self._index) > MAX_VECTORS:
            drop = len(self._index) - MAX_VECTORS
            self._vectors = self._vectors[drop:]
            self._index = {k: r - drop for k, r in self._index.items() if r >= drop}
        self._dirty = True

    def save(self) -> None:
        """Write atomically (temp file + rename); errors are logged, not raised."""
        if not self._dirty:
            return
        keys = np.zeros((len(self._index), 20), dtype=np.uint8)
        for key, row in self._index.items():
            keys[row] = np.frombuffer(key, dtype=np.uint8)
        if atomic_write_npz(self.path, keys=keys, vectors=self._vectors):
            self._dirty = False


def atomic_write_npz(path: Path, **arrays: NDArray[Any]) -> bool:
    """Write ``arrays`` to ``path`` via a temp file + rename; log (not raise) on failure."""
    return _atomic_write(path, lambda handle: np.savez(handle, **arrays))  # type: ignore[arg-type]


def atomic_write_text(path: Path, text: str) -> bool:
    """Write ``text`` (UTF-8) to ``path`` via a temp file + rename; log (not raise) on failure."""
    return _atomic_write(path, lambda handle: handle.write(text.encode("utf-8")))


def _atomic_write(path: Path, write: Callable[[BinaryIO], object]) -> bool:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=path.name, suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as handle:
                write(handle)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as exc:
        log.warning("could not write cache file %s: %s", path, exc)
        return False
    return True
