"""The desk's records besides tickets."""

from __future__ import annotations

import redis.asyncio as aioredis

from bot import keys
from bot.storage.desk import DeskRecords


async def test_customer_cards_link_identities(redis_client: aioredis.Redis) -> None:
    desk = DeskRecords(redis_client)
    assert await desk.card("web:v1") == ("web:v1", None)
    await desk.save_card("web:v1", {"name": "张三", "identities": ["web:v1"]})
    await desk.save_card("telegram:9", {"name": "", "identities": ["telegram:9"]})
    await desk.link("web:v1", {"name": "张三", "identities": ["web:v1", "telegram:9"]}, ["web:v1", "telegram:9"],
                    "telegram:9")
    assert await desk.card("telegram:9") == ("web:v1", {"name": "张三", "identities": ["web:v1", "telegram:9"]})
    assert not await redis_client.exists(keys.agent_customer_card("telegram:9"))


async def test_blocked_surveys_and_ratings(redis_client: aioredis.Redis) -> None:
    desk = DeskRecords(redis_client)
    await desk.block("web:v1", {"reason": "abuse", "at": 1.0})
    assert await desk.is_blocked("web:v1") and not await desk.is_blocked("web:v2")
    assert await desk.blocked() == [{"reason": "abuse", "at": 1.0}]
    assert await desk.unblock("web:v1") and not await desk.unblock("web:v1")
    await desk.save_survey("web:v1", {"ticket": "t1", "stage": "rating"}, 60)
    assert await desk.survey("web:v1") == {"ticket": "t1", "stage": "rating"}
    await desk.end_survey("web:v1")
    assert await desk.survey("web:v1") is None
    await desk.add_rating({"ticket": "t1", "rating": "5"})
    await desk.add_rating({"ticket": "t2", "rating": "3"})
    assert [f["ticket"] for _, f in await desk.latest_ratings(10)] == ["t2", "t1"]
    assert [f["ticket"] for _, f in await desk.ratings_since(0)] == ["t1", "t2"]


async def test_presence_follow_ups_and_the_sla_lease(redis_client: aioredis.Redis) -> None:
    desk = DeskRecords(redis_client)
    await desk.heartbeat("li", 10.0)
    assert await desk.last_seen() == {"li": 10.0}
    assert await desk.chosen_status("li") is None
    await desk.choose_status("li", {"status": "busy", "since": 10.0})
    assert await desk.chosen_statuses() == {"li": {"status": "busy", "since": 10.0}}
    await desk.add_follow_up({"ticket_id": "t1", "agent": "li", "due": 5.0}, 5.0)
    await desk.add_follow_up({"ticket_id": "t2", "agent": "li", "due": 50.0}, 50.0)
    assert [r["ticket_id"] for r in await desk.follow_ups()] == ["t1", "t2"]
    assert [r["ticket_id"] async for r in desk.take_due_follow_ups(10.0)] == ["t1"]
    assert [r async for r in desk.take_due_follow_ups(10.0)] == []  # taken once
    assert await desk.sla_lease(30) and not await desk.sla_lease(30)
