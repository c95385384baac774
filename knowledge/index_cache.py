"""On-disk cache of phrasing embeddings, keyed by (model id, hash of the phrasing text).

Embedding 150,000 phrasings takes an hour on two cores; keying each vector by its own text (not
by the whole knowledge base) means that after an admin edits one entry, a rebuild embeds only the
new phrasings.  The cache is a folder of append-only *segments* per model: each save writes the
new vectors as one more small ``.npy`` file (temp file + rename, so a crash never leaves half a
file), never rewriting what is there — at 20,000 entries the whole cache is 230 MB, and every
worker rewrote it on every edit.  Past :data:`MAX_SEGMENTS` files the segments are merged into one
(under a file lock, so two workers do not merge at once): the folder stays bounded however many
edits are made.  Segments are memory-mapped, so the workers of one machine share their pages.
A segment that cannot be read (truncated, corrupted, another version) is logged and removed, its
vectors re-embedded — a cache must never take the bot down.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
import re
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
from numpy.typing import NDArray

log = logging.getLogger(__name__)

MAX_VECTORS = 500_000  # ~770 MB at 384 floats; beyond this the oldest vectors are dropped (when merging)
MAX_SEGMENTS = 16  # more segment files than this: merge them into one
KEY_BYTES = 20


def text_key(text: str) -> bytes:
    """20-byte key of one phrasing's exact text."""
    return hashlib.sha1(text.encode("utf-8")).digest()


def _segment_dtype(dims: int) -> np.dtype[Any]:
    # keys are raw uint8 rows: numpy's bytes dtype would strip a digest's trailing NULs
    return np.dtype([("key", np.uint8, (KEY_BYTES,)), ("vector", np.float32, (dims,))])


class EmbeddingCache:
    """Vectors by text for one model, persisted as segments under ``cache_dir``."""

    def __init__(self, cache_dir: Path, model_id: str) -> None:
        safe = re.sub(r"[^A-Za-z0-9._-]+", "_", model_id)
        self.folder = Path(cache_dir).expanduser() / f"embeddings-{safe}"
        self.legacy = Path(cache_dir).expanduser() / f"embeddings-{safe}.npz"  # one-file format, read only
        self._segments: list[NDArray[Any]] = []  # structured arrays (key, vector), memory-mapped once saved
        # each segment's vectors as a plain ndarray view: indexing a np.memmap row by row makes a
        # memmap object per access (1.6 of a 4.6 s warm start at 20,000 entries)
        self._vectors: list[NDArray[np.float32]] = []
        self._index: dict[bytes, tuple[int, int]] = {}  # key -> (segment, row)
        self._loaded: set[str] = set()  # segment file names already indexed
        self._unsaved: list[int] = []  # segments put since the last save
        self._load_legacy()
        self.refresh()

    def __len__(self) -> int:
        return len(self._index)

    def segment_files(self) -> list[Path]:
        """The segment files on disk, oldest first (names start with a nanosecond timestamp)."""
        try:
            return sorted(self.folder.glob("*.npy"))
        except OSError:
            return []

    # ------------------------------------------------------------------ reading

    def _load_legacy(self) -> None:
        if not self.legacy.exists():
            return
        try:
            with np.load(self.legacy, allow_pickle=False) as data:
                keys = np.asarray(data["keys"])
                vectors = np.asarray(data["vectors"], dtype=np.float32)
            if keys.dtype != np.uint8 or keys.shape != (len(vectors), KEY_BYTES) or vectors.ndim != 2:
                raise ValueError("keys and vectors do not line up")
            segment = np.zeros(len(keys), dtype=_segment_dtype(vectors.shape[1]))
            segment["key"], segment["vector"] = keys, vectors
            self._add(segment)
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
            log.warning("embedding cache %s is unreadable (%s); ignoring it", self.legacy, exc)

    def refresh(self) -> None:
        """Index segments written since (by this worker's peers): their vectors are not embedded again."""
        for path in self.segment_files():
            if path.name in self._loaded:
                continue
            try:
                segment = np.load(path, mmap_mode="r", allow_pickle=False)
                names = segment.dtype.names or ()
                if names != ("key", "vector") or segment.dtype["key"].shape != (KEY_BYTES,) or segment.ndim != 1:
                    raise ValueError(f"not an embedding segment ({segment.dtype})")
            except (OSError, ValueError, EOFError) as exc:
                log.warning("embedding cache segment %s is unreadable (%s); removing it", path, exc)
                with contextlib.suppress(OSError):
                    path.unlink()
                continue
            self._loaded.add(path.name)
            self._add(segment)

    def _add(self, segment: NDArray[Any]) -> int:
        number = len(self._segments)
        self._segments.append(segment)
        self._vectors.append(np.asarray(segment["vector"]).view(np.ndarray))
        raw = np.ascontiguousarray(segment["key"]).tobytes()
        index = self._index
        for row in range(len(segment)):
            index.setdefault(raw[row * KEY_BYTES:(row + 1) * KEY_BYTES], (number, row))
        return number

    def get(self, texts: Sequence[str]) -> tuple[dict[int, NDArray[np.float32]], list[int]]:
        """Cached vectors by position in ``texts``, and the positions that are missing."""
        found: dict[int, NDArray[np.float32]] = {}
        missing: list[int] = []
        for i, text in enumerate(texts):
            where = self._index.get(text_key(text))
            if where is None:
                missing.append(i)
            else:
                found[i] = self._vectors[where[0]][where[1]]
        if missing:
            self.refresh()  # another worker may have embedded them a moment ago
            still: list[int] = []
            for i in missing:
                where = self._index.get(text_key(texts[i]))
                if where is None:
                    still.append(i)
                else:
                    found[i] = self._vectors[where[0]][where[1]]
            missing = still
        return found, missing

    # ------------------------------------------------------------------ writing

    def put(self, texts: Sequence[str], vectors: NDArray[np.float32]) -> None:
        fresh: dict[bytes, NDArray[np.float32]] = {}
        for text, vector in zip(texts, vectors, strict=True):
            key = text_key(text)
            if key not in self._index:
                fresh.setdefault(key, vector)
        if not fresh:
            return
        segment = np.zeros(len(fresh), dtype=_segment_dtype(vectors.shape[1]))
        segment["key"] = np.frombuffer(b"".join(fresh), dtype=np.uint8).reshape(-1, KEY_BYTES)
        segment["vector"] = np.asarray(list(fresh.values()), dtype=np.float32)
        self._unsaved.append(self._add(segment))

    def save(self) -> None:
        """Write what was put since the last save as one new segment; merge past MAX_SEGMENTS.
        Errors are logged, not raised."""
        if not self._unsaved:
            return
        block = np.concatenate([self._segments[i] for i in self._unsaved])
        name = f"{time.time_ns():020d}-{os.getpid()}.npy"
        if atomic_write_npy(self.folder / name, block):
            self._loaded.add(name)
            self._unsaved = []
        if len(self.segment_files()) > MAX_SEGMENTS:
            self.compact()

    def compact(self) -> None:
        """Merge every segment (and the one-file legacy cache) into one; the newest
        :data:`MAX_VECTORS` vectors are kept.  Under a lock file: one worker merges at a time."""
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            with _locked(self.folder / ".lock"):
                self.refresh()
                files = self.segment_files()
                if len(files) <= 1 and not self.legacy.exists():
                    return
                merged = self._merged()
                name = f"{time.time_ns():020d}-{os.getpid()}.npy"
                if not atomic_write_npy(self.folder / name, merged):
                    return
                self._loaded.add(name)
                for path in files:
                    path.unlink(missing_ok=True)  # mapped pages stay readable until unmapped
                self.legacy.unlink(missing_ok=True)
        except OSError as exc:
            log.warning("could not merge embedding cache %s: %s", self.folder, exc)

    def _merged(self) -> NDArray[Any]:
        """Every indexed vector once, oldest first, the oldest beyond MAX_VECTORS dropped."""
        by_segment: dict[int, list[int]] = {}
        for number, row in self._index.values():
            by_segment.setdefault(number, []).append(row)
        parts = [self._segments[n][np.sort(np.array(rows))] for n, rows in sorted(by_segment.items())]
        dims = {p.dtype["vector"].shape for p in parts}
        parts = [p for p in parts if p.dtype["vector"].shape == max(dims)] if len(dims) > 1 else parts
        merged = np.concatenate(parts) if parts else np.zeros(0, dtype=_segment_dtype(384))
        return merged[-MAX_VECTORS:]


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    with open(path, "a+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def atomic_write_npy(path: Path, array: NDArray[Any]) -> bool:
    """Write one array to ``path`` (``.npy``) via a temp file + rename; log (not raise) on failure."""
    return _atomic_write(path, lambda handle: np.save(handle, array, allow_pickle=False))


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
