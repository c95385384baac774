from __future__ import annotations

import redis.asyncio as aioredis

from knowledge.repository import KnowledgeRepository
from knowledge.schema import parse_kb

KB = """
- id: b-second
  questions: [q2]
  answer: a2
- id: a-first
  questions: [q1]
  answer: {zh: 答案, en: answer}
  enabled: false
"""


async def test_empty_store_has_no_kb(redis_client: aioredis.Redis) -> None:
    repo = KnowledgeRepository(redis_client)
    assert await repo.load() is None
    assert await repo.version() == 0


async def test_replace_keeps_order_and_bumps_version(redis_client: aioredis.Redis) -> None:
    repo = KnowledgeRepository(redis_client)
    kb = parse_kb(KB)
    assert await repo.replace(kb) == 1
    loaded = await repo.load()
    assert loaded == kb
    assert [e.id for e in loaded] == ["b-second", "a-first"]
    smaller = parse_kb("- id: only\n  questions: [q]\n  answer: x\n")
    assert await repo.replace(smaller) == 2
    assert await repo.load() == smaller
