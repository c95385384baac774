"""Re-indexing this worker to the stored knowledge base: nothing when the version is the same,
only the changed entries after a small edit, a rebuild after a large one."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis

from knowledge import reload
from knowledge.reload import changed_entries, reindex
from knowledge.repository import KnowledgeRepository
from knowledge.schema import KnowledgeBase, parse_kb
from knowledge.search import Retriever, build_retriever
from knowledge.service import KnowledgeService

KB = "".join(f"- id: e{i}\n  questions: [question number {i} about topic{i}]\n  answer: answer {i}\n" for i in range(6))


def lexical(kb: KnowledgeBase) -> Retriever:
    return build_retriever(kb, cache_dir=None, embeddings=False)


def test_changed_entries() -> None:
    old = parse_kb(KB)
    new = parse_kb(KB.replace("answer 1\n", "answer one\n") + "- id: e9\n  questions: [new]\n  answer: n\n")
    assert changed_entries(old, new) == (["e1", "e9"], [])
    assert changed_entries(new, old) == (["e1"], ["e9"])


async def test_reindex_patches_small_edits_and_rebuilds_large_ones(redis_client: aioredis.Redis,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    repository = KnowledgeRepository(redis_client)
    version = await repository.replace(parse_kb(KB))
    kb = await repository.load()
    assert kb is not None
    retriever = lexical(kb)
    builds: list[KnowledgeBase] = []

    def build(new: KnowledgeBase) -> Retriever:
        builds.append(new)
        return lexical(new)

    assert await reindex(repository, kb, version, retriever, build) is None  # nothing new

    service = KnowledgeService(redis_client)
    await service.delete("e2", "boss")
    fresh = await reindex(repository, kb, version, retriever, build)
    assert fresh is not None and fresh.incremental and not builds
    assert fresh.removed == ("e2",) and fresh.version == version + 1 and "e2" not in fresh.retriever.labels
    assert "e2" in retriever.labels  # the old index is untouched (turns in flight keep searching it)

    monkeypatch.setattr(reload, "INCREMENTAL_MAX", 0)
    await service.delete("e3", "boss")
    rebuilt = await reindex(repository, fresh.kb, fresh.version, fresh.retriever, build)
    assert rebuilt is not None and not rebuilt.incremental and builds == [rebuilt.kb]
    assert await reindex(repository, kb, version, None, build) is not None and len(builds) == 2  # no index yet


async def test_the_entries_are_decoded_and_compared_off_the_event_loop(redis_client: aioredis.Redis,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    import threading

    repository = KnowledgeRepository(redis_client)
    version = await repository.replace(parse_kb(KB))
    kb = await repository.load()
    assert kb is not None
    threads: list[threading.Thread] = []
    real = reload.knowledge_base

    def spied(raw: dict[str, str], stored_version: int) -> KnowledgeBase | None:
        threads.append(threading.current_thread())
        return real(raw, stored_version)

    monkeypatch.setattr(reload, "knowledge_base", spied)
    await KnowledgeService(redis_client).delete("e4", "boss")
    fresh = await reindex(repository, kb, version, lexical(kb), lexical)
    assert fresh is not None and fresh.removed == ("e4",) and fresh.kb == await repository.load()
    assert threads and threading.main_thread() not in threads
