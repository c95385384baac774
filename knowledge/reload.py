"""Bring this worker's index up to the stored knowledge base: re-index only what changed.

A one-entry edit re-embeds one entry's phrasings instead of all of them; beyond
``INCREMENTAL_MAX`` changed entries (an import) a rebuild is as quick and simpler.  What the
retriever is wrapped in (the intent layer, integrations) stays the runtime's.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

from knowledge.repository import KnowledgeRepository
from knowledge.repository import knowledge_base as knowledge_base  # looked up at call time (tests spy on it)
from knowledge.schema import KnowledgeBase
from knowledge.search import Retriever

INCREMENTAL_MAX = 50  # more changed entries than this: rebuild the index from scratch


def changed_entries(old: KnowledgeBase, new: KnowledgeBase) -> tuple[list[str], list[str]]:
    """Ids whose entry is new or differs, and ids that disappeared."""
    changed = [entry.id for entry in new.entries if old.get(entry.id) != entry]
    removed = [entry.id for entry in old.entries if new.get(entry.id) is None]
    return changed, removed


def _compared(kb: KnowledgeBase, raw: dict[str, str], version: int
              ) -> tuple[KnowledgeBase, list[str], list[str]] | None:
    stored = knowledge_base(raw, version)
    return None if stored is None else (stored, *changed_entries(kb, stored))


@dataclass(frozen=True)
class Reindexed:
    """The stored knowledge base at ``version`` and a retriever over it."""

    kb: KnowledgeBase
    version: int
    retriever: Retriever
    changed: tuple[str, ...]
    removed: tuple[str, ...]
    incremental: bool  # the old retriever was patched (False: rebuilt with ``build``)


async def reindex(repository: KnowledgeRepository, kb: KnowledgeBase, version: int, retriever: Retriever | None,
                  build: Callable[[KnowledgeBase], Retriever]) -> Reindexed | None:
    """The stored knowledge base re-indexed, or None when the store still holds ``version``
    (or nothing).  Only the read from the store is on the event loop: decoding and comparing
    the entries (a second of CPU at 20,000) and the index work run in a thread, so the loop
    keeps serving turns."""
    stored_version = await repository.version()
    if stored_version == version:
        return None
    raw = await repository.raw_documents()
    compared = await asyncio.to_thread(_compared, kb, raw, stored_version)
    if compared is None:
        return None
    stored, changed, removed = compared
    if retriever is not None and len(changed) + len(removed) <= INCREMENTAL_MAX:
        upserts = [entry for entry in (stored.get(entry_id) for entry_id in changed) if entry is not None]
        patched = await asyncio.to_thread(retriever.updated, upserts, removed)
        return Reindexed(stored, stored_version, patched, tuple(changed), tuple(removed), True)
    rebuilt = await asyncio.to_thread(build, stored)
    return Reindexed(stored, stored_version, rebuilt, tuple(changed), tuple(removed), False)
