"""The live knowledge base in the store: entries, version, audit log and change announcements.

The one owner of the ``kb:*`` keys and the one decoder of the entries hash, so every worker
answers from the same entries and every reader sees them the same way.  Each entry is stored
as its JSON plus ``_pos`` (its place in the knowledge base's order).  :meth:`commit` writes
entries, version and audit records in ONE ``MULTI``/``EXEC``; the write lock and the
announcement around it belong to :class:`knowledge.service.KnowledgeService`.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping, Sequence
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import WatchError

from bot import keys
from knowledge.schema import Entry, KnowledgeBase, build_kb, parse_entry

AUDIT_MAX = 20_000
SCAN_COUNT = 500  # entries per HSCAN reply while a write plans its change (a few ms of parsing each)
Document = dict[str, Any]  # one stored entry: its JSON and "_pos"


def decode(document: Mapping[str, Any]) -> Entry:
    """A stored document as an entry.  Lenient (``strict=False``): old data never stops a worker."""
    fields = {k: v for k, v in document.items() if k != "_pos"}
    return parse_entry(fields, f"stored entry {document.get('id')!r}", strict=False)


def encode(entry: Entry, position: int) -> str:
    return json.dumps({**entry.to_json(), "_pos": position}, ensure_ascii=False)


def in_order(documents: Mapping[str, Document]) -> list[Document]:
    return sorted(documents.values(), key=lambda d: int(d.get("_pos", 0)))


def parse_documents(raw: Mapping[str, str]) -> dict[str, Document]:
    return {str(k): json.loads(v) for k, v in raw.items()}


def knowledge_base(raw: Mapping[str, str], version: int) -> KnowledgeBase | None:
    """What :meth:`KnowledgeRepository.load` returns, from :meth:`KnowledgeRepository.raw_documents`
    and the version (pure: safe to run in a thread)."""
    entries = [decode(d) for d in in_order(parse_documents(raw))]
    if not entries:
        return KnowledgeBase(()) if version > 0 else None
    return build_kb(entries, "store")


class KnowledgeRepository:
    def __init__(self, redis: aioredis.Redis) -> None:
        self.redis = redis

    # ------------------------------------------------------------------ reading

    async def version(self) -> int:
        return int(await self.redis.get(keys.kb_version()) or 0)

    async def raw_documents(self) -> dict[str, str]:
        """Every stored entry as its JSON text, undecoded: decoding 20,000 of them takes a
        second of CPU, which a reload does in a thread (:func:`knowledge_base`), not on the loop."""
        stored = await self.redis.hgetall(keys.kb_entries())
        return {str(k): str(v) for k, v in stored.items()}

    async def scanned_documents(self, count: int = SCAN_COUNT) -> dict[str, str]:
        """:meth:`raw_documents` read ``count`` at a time (``HSCAN``): one ``HGETALL`` of 20,000
        entries is ~50 ms of reply parsing on the event loop.  Not a snapshot, so only for a
        reader that holds the write lock (a write planning its change)."""
        found: dict[str, str] = {}
        async for key, value in self.redis.hscan_iter(keys.kb_entries(), count=count):
            found[str(key)] = str(value)
        return found

    async def entries(self) -> list[Entry]:
        """Every entry, in the knowledge base's order (decoded in a thread, as :meth:`documents`)."""
        raw = await self.raw_documents()
        return await asyncio.to_thread(lambda: [decode(d) for d in in_order(parse_documents(raw))])

    async def load(self) -> KnowledgeBase | None:
        """The stored knowledge base, or None if nothing was ever stored.

        A store whose entries were all removed (``kb import --replace-all`` of an empty file)
        has a version but no entries: that is an empty knowledge base, and it is never
        re-seeded from the shipped FAQ over the admins' wishes."""
        raw = await self.raw_documents()
        return await asyncio.to_thread(knowledge_base, raw, await self.version())

    async def get(self, entry_id: str) -> Entry | None:
        raw = await self.redis.hget(keys.kb_entries(), entry_id)
        return None if raw is None else decode(json.loads(raw))

    async def audit(self) -> list[dict[str, Any]]:
        """Every kept audit record, oldest first."""
        return [json.loads(r) for r in await self.redis.lrange(keys.kb_audit(), 0, -1)]

    # ------------------------------------------------------------------ writing

    async def commit(self, writes: Mapping[str, str], deletes: Sequence[str],
                     records: Sequence[Mapping[str, Any]], *, clear: bool = False) -> int:
        """Write encoded entries, delete ids, bump the version and append ``records`` (each
        stamped with the new version) in one transaction; returns the new version.

        The version is read under ``WATCH`` and set to one more, so the audit records carry
        the version of the very transaction that wrote them; a concurrent bump retries."""
        async with self.redis.pipeline(transaction=True) as pipe:
            while True:
                try:
                    await pipe.watch(keys.kb_version())
                    version = int(await pipe.get(keys.kb_version()) or 0) + 1
                    pipe.multi()  # type: ignore[no-untyped-call, unused-ignore]
                    if clear:
                        pipe.delete(keys.kb_entries())
                    for entry_id, document in writes.items():
                        pipe.hset(keys.kb_entries(), entry_id, document)
                    if deletes:
                        pipe.hdel(keys.kb_entries(), *deletes)
                    pipe.set(keys.kb_version(), version)
                    if records:
                        pipe.rpush(keys.kb_audit(), *(json.dumps({"version": version, **r}, ensure_ascii=False)
                                                      for r in records))
                        pipe.ltrim(keys.kb_audit(), -AUDIT_MAX, -1)
                    await pipe.execute()
                    return version
                except WatchError:
                    continue

    async def replace(self, kb: KnowledgeBase) -> int:
        """Atomically make the stored entries exactly ``kb``, unaudited and unannounced; returns
        the new version.  A restore primitive for tests and tools: live writes go through
        :class:`knowledge.service.KnowledgeService` (lock, audit, announcement)."""
        return await self.commit({entry.id: encode(entry, position) for position, entry in enumerate(kb.entries)},
                                 (), (), clear=True)

    async def announce(self, version: int, changed: Sequence[str]) -> None:
        """Tell every worker to reload now (they also poll the version, should this be lost)."""
        await self.redis.publish(keys.kb_changes(), json.dumps({"version": version, "changed": list(changed)[:100]}))
