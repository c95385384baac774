"""The handoff over WeChat: signed, encrypted webhook calls like WeChat's, agent replies as
customer-service messages to the stand-in WeChat API, and the 48-hour window made visible to
the agent (the message waits in the outbox and goes out when the customer writes again)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from bot import keys
from bot.agents.auth import hash_password
from bot.config import AgentsConfig, AgentUserConfig, Config, IntentsConfig, KnowledgeConfig
from tests.bot.channels import test_wechat
from tests.bot.channels.test_wechat import OPENID, text_xml
from tests.bot.channels.wechat_standin import StandIn, wait_for

# the WeChat tests' own fixtures: the app behind signed webhooks, the store backends, the API stand-in
backend, make_app, standin = test_wechat.backend, test_wechat.make_app, test_wechat.standin

PASSWORD = "li-password-1"


@pytest.fixture
def config(cache_dir: Path) -> Config:
    users = (AgentUserConfig("li", hash_password(PASSWORD), "agent"),)
    return Config(knowledge=KnowledgeConfig(cache_dir=str(cache_dir)), intents=IntentsConfig(),
                  agents=AgentsConfig(users=users))


def test_agent_reply_goes_out_as_a_customer_service_message_or_waits_for_the_window(
        make_app: Callable[..., Any], standin: StandIn) -> None:
    with make_app("safe") as app:
        handoff = app.wechat.say(text_xml("我要投诉，退款一个星期了还没到账", 8801))
        assert handoff is not None and "第1位" in handoff
        http = app.client
        csrf = {"X-CSRF-Token": http.post("/api/agent/login", json={"name": "li", "password": PASSWORD}).json()["csrf"]}
        [ticket] = http.get("/api/agent/tickets").json()["queued"]
        assert ticket["channel"] == "wechat" and ticket["user_id"] == OPENID
        assert http.post(f"/api/agent/tickets/{ticket['id']}/claim", headers=csrf).status_code == 200
        sent = http.post(f"/api/agent/tickets/{ticket['id']}/messages", headers=csrf, json={"text": "您好，我来查"})
        assert sent.status_code == 200 and sent.json()["deferred"] is None
        wait_for(lambda: any(m["text"]["content"] == "您好，我来查" for m in standin.custom_sent))

        # two days later the 48-hour window is shut: the agent is told, the message waits
        app.call(app.state.runtime.store.redis.hset, keys.customer("wechat", OPENID), "window_last_in",
                 str(time.time() - 49 * 3600))
        late = http.post(f"/api/agent/tickets/{ticket['id']}/messages", headers=csrf, json={"text": "退款已到账"})
        assert late.status_code == 202 and "window_closed" in late.json()["deferred"]
        notes = http.get(f"/api/agent/tickets/{ticket['id']}").json()["notes"]
        assert notes[-1]["kind"] == "delivery_deferred"
        assert not any(m["text"]["content"] == "退款已到账" for m in standin.custom_sent)

        app.wechat.say(text_xml("在吗？", 8802))  # the customer writes: the window reopens, the queue goes out
        wait_for(lambda: any(m["text"]["content"] == "退款已到账" for m in standin.custom_sent))
