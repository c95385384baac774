"""The handoff over Telegram: the real python-telegram-bot and Kefu's real ASGI app talk to the
stand-in Bot API server; the agent works through the console's REST API on the same server."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator

import pytest

from bot.agents.auth import hash_password
from bot.config import AgentsConfig, AgentUserConfig, Config
from bot.types import ConversationState
from tests.bot.channels.telegram_standin import BotApiStandIn
from tests.bot.channels.test_telegram import CHAT, Kefu, running

PASSWORD = "li-password-1"


@pytest.fixture
async def kefu(memory_config: Config) -> AsyncIterator[Kefu]:
    users = (AgentUserConfig("li", hash_password(PASSWORD), "agent"),)
    config = dataclasses.replace(memory_config, agents=AgentsConfig(users=users, queue_update_seconds=0))
    async with BotApiStandIn() as standin, running(config, standin, "webhook") as k:
        yield k


async def test_complaint_on_telegram_agent_replies_resolves_and_customer_rates(kefu: Kefu) -> None:
    [handoff] = await kefu.say("我要投诉你们，客服电话一直打不通，太差劲了", chat_id=CHAT)
    assert "抱歉" in handoff and "第1位" in handoff

    login = await kefu.http.post("/api/agent/login", json={"name": "li", "password": PASSWORD})
    csrf = {"X-CSRF-Token": login.json()["csrf"]}
    [ticket] = (await kefu.http.get("/api/agent/tickets")).json()["queued"]
    assert ticket["channel"] == "telegram" and ticket["reason"] == "complaint"
    assert ticket["customer_name"] == "小明"

    before = len(kefu.standin.sent())
    assert (await kefu.http.post(f"/api/agent/tickets/{ticket['id']}/claim", headers=csrf)).status_code == 200
    r = await kefu.http.post(f"/api/agent/tickets/{ticket['id']}/messages", headers=csrf,
                             json={"text": "您好，我是小李，非常抱歉，我来帮您处理。"})
    assert r.status_code == 200
    texts = (await kefu.standin.wait_sent(before + 2))[before:]
    assert "li" in texts[0] and texts[1] == "您好，我是小李，非常抱歉，我来帮您处理。"
    assert all(int(p["chat_id"]) == CHAT for p in kefu.standin.sent()[before:])

    # the customer answers: it goes to the agent, the bot says nothing
    await kefu.send(kefu.standin.message_update("订单号 778899", chat_id=CHAT))
    for _ in range(100):
        detail = (await kefu.http.get(f"/api/agent/tickets/{ticket['id']}")).json()
        if detail["transcript"][-1]["text"] == "订单号 778899":
            break
        await asyncio.sleep(0.05)
    assert detail["transcript"][-1]["text"] == "订单号 778899"
    assert len(kefu.standin.sent()) == before + 2

    await kefu.http.post(f"/api/agent/tickets/{ticket['id']}/notes", headers=csrf, json={"text": "内部：VIP 客户"})
    before = len(kefu.standin.sent())
    assert (await kefu.http.post(f"/api/agent/tickets/{ticket['id']}/resolve", headers=csrf)).status_code == 200
    await kefu.standin.wait_sent(before + 1)
    survey = kefu.standin.sent()[-1]
    assert "打分" in survey["text"]
    buttons = [b for row in survey["reply_markup"]["inline_keyboard"] for b in row]
    assert [b["text"] for b in buttons] == ["1", "2", "3", "4", "5"]

    [ask_comment] = await kefu.press(survey, buttons[3]["callback_data"])
    assert "意见" in ask_comment
    [thanks] = await kefu.say("处理得很快", chat_id=CHAT)
    assert "感谢您的反馈" in thanks
    assert not any("VIP" in text for text in kefu.standin.texts())

    stored = await kefu.runtime.desk.tickets.get(ticket["id"])  # type: ignore[attr-defined]
    assert stored is not None and stored.rating == 4 and stored.comment == "处理得很快"
    conv = await kefu.runtime.store.load_conversation(f"telegram:{CHAT}")
    assert conv is not None and conv.state is ConversationState.BOT
