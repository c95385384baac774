"""The live knowledge base, kept in the store so every worker answers from the same entries."""

from __future__ import annotations

import json

import redis.asyncio as aioredis

from bot import keys
from knowledge.schema import KnowledgeBase, build_kb, parse_entry


class KnowledgeRepository:
    def __init__(self, redis: aioredis.Redis) -> None:
        self.redis = redis

    async def version(self) -> int:
        return int(await self.redis.get(keys.kb_version()) or 0)

    async def load(self) -> KnowledgeBase | None:
        """The stored knowledge base, or None if nothing was ever stored.

        A store whose entries were all removed (``kb import --replace-all`` of an empty file)
        has a version but no entries: that is an empty knowledge base, and it is never
        re-seeded from the shipped FAQ over the admins' wishes."""
        raw = await self.redis.hgetall(keys.kb_entries())
        if not raw:
            return KnowledgeBase(()) if await self.version() > 0 else None
        documents = sorted((json.loads(value) for value in raw.values()), key=lambda d: int(d["_pos"]))
        entries = (parse_entry({k: v for k, v in doc.items() if k != "_pos"}, f"stored entry {doc.get('id')!r}",
                               strict=False)
                   for doc in documents)
        return build_kb(entries, "store")

    async def replace(self, kb: KnowledgeBase) -> int:
        """Atomically replace every entry (an import is all-or-nothing); returns the new version."""
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(keys.kb_entries())
            for position, entry in enumerate(kb.entries):
                document = json.dumps({**entry.to_json(), "_pos": position}, ensure_ascii=False)
                pipe.hset(keys.kb_entries(), entry.id, document)
            pipe.incr(keys.kb_version())
            results = await pipe.execute()
        return int(results[-1])
