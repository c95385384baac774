"""What a new customer sees, scripted through the web chat with the shipped FAQ and the real model:
off-topic chat gets the scope reply (no FAQ answer, no queue), complaints without keywords are
handed off with a readable reason, a refund *question* still gets the refund answer, and every
answer the customer disputes lands on the admin's review list next to the entry that was used."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio as aioredis

from bot.config import Config
from tests.bot.admin.conftest import Admin, make_admin


@pytest.fixture
async def shop(admin_config: Config, redis_client: aioredis.Redis) -> AsyncIterator[Admin]:
    """The admin harness with embeddings on (the default a customer meets)."""
    config = dataclasses.replace(admin_config, intents=dataclasses.replace(admin_config.intents, embeddings=True))
    async for admin in make_admin(config, redis_client):
        yield admin


async def say(admin: Admin, text: str, session: str) -> dict[str, Any]:
    r = await admin.client.post("/api/chat", json={"session": f"session-{session}", "text": text})
    assert r.status_code == 200, r.text
    data: dict[str, Any] = r.json()
    return data


@pytest.mark.parametrize(("text", "language"), [
    ("今天天气怎么样", "zh"), ("1+1等于几", "zh"), ("can you write me a poem", "en"),
    ("what's the meaning of life", "en"), ("help", "en"),
])
async def test_off_topic_gets_what_the_bot_can_do_not_a_queue(shop: Admin, text: str, language: str) -> None:
    data = await say(shop, text, "offtopic")
    assert data["decision"]["action"] == "smalltalk", data
    assert data["handoff"] is None and data["state"] == "bot"
    reply = data["replies"][0]
    assert ("我可以" in reply["text"]) if language == "zh" else ("I can" in reply["text"])
    assert len(reply["suggestions"]) == 3  # a way forward: three questions of the FAQ, one tap each
    picked = await say(shop, "1", "offtopic")  # the first suggestion, typed
    assert picked["decision"]["action"] == "answer"
    assert picked["decision"]["entry_id"] == reply["suggestions"][0]["payload"]


@pytest.mark.parametrize(("text", "words"), [
    ("说好的48小时发货，现在一周了，言而无信", "promise"),
    ("快递员把我的包裹扔在门口被偷了，这事你们必须负责", ""),
    ("我要退款！！！", "demand"),
    ("not happy with this at all", ""),
    ("I'll report you to the consumer association", "threatens to report to the consumer association"),
    ("承诺的优惠券到现在都没发给我", ""),
    ("上周说周三发货，后来又说周五，到现在还没发", 'says a promise was broken ("上周说周三发货，后来又说周五，到现在还没发")'),
    ("because of your late delivery i missed my flight", "holds the company responsible for a loss"),
    ("服务真好，又给我发错了", "is sarcastic"),
    ("WHERE IS MY REFUND!!!", ""),
])
async def test_complaints_are_handed_off_with_a_readable_reason(shop: Admin, text: str, words: str) -> None:
    data = await say(shop, text, "complaint")
    assert data["decision"]["action"] == "handoff", data
    assert data["handoff"]["reason"] == "complaint"
    detail = data["handoff"]["detail"]
    assert words in detail and "report to report" not in detail
    assert "抱歉" in data["replies"][0]["text"] or "sorry" in data["replies"][0]["text"].lower()


@pytest.mark.parametrize(("text", "entry"), [
    ("退款多久到账", "refund-time"), ("how long does a refund take", "refund-time"),
    ("退款还没到账怎么办", "refund-missing"),
    ("退款一般几天能到账", "refund-time"),
])
async def test_a_refund_question_still_gets_the_refund_answer(shop: Admin, text: str, entry: str) -> None:
    data = await say(shop, text, "refund")
    assert (data["decision"]["action"], data["decision"]["entry_id"]) == ("answer", entry), data


@pytest.mark.parametrize("follow_up", ["转人工", "答非所问"])
async def test_a_disputed_answer_goes_on_the_review_list_next_to_its_entry(shop: Admin, follow_up: str) -> None:
    answered = await say(shop, "退款多久到账", "dispute")
    assert answered["decision"]["action"] == "answer"
    handed = await say(shop, follow_up, "dispute")
    assert handed["decision"]["action"] == "handoff"
    await shop.login()
    clusters = (await shop.client.get("/api/admin/unanswered")).json()["clusters"]
    [mine] = [c for c in clusters if c["label"] == "退款多久到账"]
    assert mine["reasons"] == {"disputed": 1} and mine["suggested_entry"] == answered["decision"]["entry_id"]


@pytest.mark.parametrize("text", ["great service, thanks a lot!", "你们服务真好，我发了朋友圈推荐", "消费者权益日是几号",
                                  "看一下今天早上新闻"])
async def test_praise_and_look_alikes_are_never_taken_for_complaints(shop: Admin, text: str) -> None:
    data = await say(shop, text, "lookalike")
    assert data["handoff"] is None or data["handoff"]["reason"] not in ("complaint", "human_request"), data


async def test_thumbs_down_on_a_confident_answer_goes_on_the_review_list(shop: Admin) -> None:
    answered = await say(shop, "怎么退货", "thumbs")
    assert answered["decision"]["action"] == "answer" and answered["decision"]["confidence"] > 0.6
    vote = await shop.client.post("/api/feedback", json={"session": "session-thumbs", "helpful": False})
    assert vote.json() == {"recorded": True}
    await shop.login()
    clusters = (await shop.client.get("/api/admin/unanswered")).json()["clusters"]
    [mine] = [c for c in clusters if c["label"] == "怎么退货"]
    assert mine["reasons"] == {"thumbs_down": 1} and mine["suggested_entry"] == answered["decision"]["entry_id"]
