"""``kefu purge``: data older than the retention period goes, open work and recent data stay."""

from __future__ import annotations

import json

import redis.asyncio as aioredis

from bot import keys
from bot.config import StoreConfig
from bot.retention import purge
from bot.storage.conversations import Store
from bot.types import Conversation, InboundMessage, Role, TranscriptLine

DAY = 86_400.0
NOW = 1_800_000_000.0


async def _conversation(store: Store, user: str, at: float) -> None:
    conv = Conversation.start(InboundMessage("web", user, user, "hi", f"m-{user}", at))
    await store.save_conversation(conv.evolve(updated_at=at), [TranscriptLine(Role.CUSTOMER, "我的手机13812345678", at)])


async def test_purge_removes_old_conversations_closed_tickets_and_logged_questions(
        redis_client: aioredis.Redis) -> None:
    store = Store(redis_client, StoreConfig())
    await _conversation(store, "old", NOW - 40 * DAY)
    await _conversation(store, "recent", NOW - 1 * DAY)
    await redis_client.hset(keys.agent_ticket("t-old-closed"), mapping={"status": "resolved",
                                                                        "closed_at": repr(NOW - 40 * DAY)})
    await redis_client.rpush(keys.agent_ticket_notes("t-old-closed"), json.dumps({"text": "note"}))
    await redis_client.hset(keys.agent_ticket("t-old-open"), mapping={"status": "claimed", "closed_at": "0"})
    await redis_client.hset(keys.agent_ticket("t-new-closed"), mapping={"status": "resolved",
                                                                        "closed_at": repr(NOW - DAY)})
    for days in (50, 35, 2):
        await redis_client.rpush(keys.admin_questions(), json.dumps({"text": f"q{days}", "at": NOW - days * DAY}))
    await redis_client.rpush(keys.admin_unanswered(), json.dumps({"text": "u", "at": NOW - 31 * DAY}))

    report = await purge(redis_client, NOW - 30 * DAY)

    assert (report.conversations, report.tickets, report.questions) == (1, 1, 3)
    assert await store.load_conversation("web:old") is None
    assert await redis_client.exists(keys.transcript("web:old")) == 0
    assert await store.load_conversation("web:recent") is not None
    assert await redis_client.exists(keys.agent_ticket("t-old-closed"), keys.agent_ticket_notes("t-old-closed")) == 0
    assert await redis_client.exists(keys.agent_ticket("t-old-open"), keys.agent_ticket("t-new-closed")) == 2
    left = [json.loads(raw)["text"] for raw in await redis_client.lrange(keys.admin_questions(), 0, -1)]
    assert left == ["q2"]
    assert await redis_client.llen(keys.admin_unanswered()) == 0
    assert (await purge(redis_client, NOW - 30 * DAY)).summary().startswith("purged 0 conversations, 0 closed")
