"""The Redis outage drill: ``kefu serve`` with every channel on, Redis gone for 30 seconds while
customers keep writing, then back.  Nothing may be lost and nobody may be answered twice.

Web chat gets 503 + Retry-After and its page resends; WeChat, Telegram polling and WeCom would
not bring a message back, so Kefu holds those until Redis answers.  ``KEFU_OUTAGE_SECONDS``
shortens the outage for a quick local run.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
import redis

from bot import keys
from handlers.texts import say
from tests.bot.channels.telegram_standin import TOKEN as TELEGRAM_TOKEN
from tests.bot.channels.telegram_standin import BotApiStandIn
from tests.bot.channels.test_wechat import AES_KEY as WECHAT_AES_KEY
from tests.bot.channels.test_wechat import APP_ID, OPENID, WeChatServer, text_xml
from tests.bot.channels.test_wechat import TOKEN as WECHAT_TOKEN
from tests.bot.channels.test_wecom import AES_KEY as WECOM_AES_KEY
from tests.bot.channels.test_wecom import CORP_ID, KFID, USER, WeComServer, kf_text
from tests.bot.channels.test_wecom import TOKEN as WECOM_TOKEN
from tests.bot.channels.wechat_standin import StandIn, serve
from tests.bot.conftest import RedisProcess
from tests.browser import kefu_server

pytestmark = pytest.mark.redis

OUTAGE_SECONDS = float(os.environ.get("KEFU_OUTAGE_SECONDS", "30"))
HELD = say("store_unavailable_held", "zh")
TG_CHAT = 4242


def drill_config(cache_dir: Path, redis_url: str, wechat_api: str, telegram_api: str) -> str:
    return f"""
store:
  url: {redis_url}
knowledge:
  cache_dir: {cache_dir}
intents:
  embeddings: false
channels:
  telegram:
    enabled: true
    token: "{TELEGRAM_TOKEN}"
    mode: polling
    base_url: {telegram_api}
    poll_timeout_seconds: 1
  wechat:
    enabled: true
    token: {WECHAT_TOKEN}
    app_id: {APP_ID}
    app_secret: wechat-secret
    encoding_aes_key: {WECHAT_AES_KEY}
    api_base_url: {wechat_api}
  wecom:
    enabled: true
    corp_id: {CORP_ID}
    secret: wecom-secret
    token: {WECOM_TOKEN}
    encoding_aes_key: {WECOM_AES_KEY}
    open_kfid: {KFID}
    api_base_url: {wechat_api}
"""


async def eventually(predicate: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.1)


def customer_lines(redis_url: str, conversation: str) -> list[str]:
    stored = redis.Redis.from_url(redis_url).lrange(keys.transcript(conversation), 0, -1)
    lines = [json.loads(raw) for raw in stored]
    return [line["text"] for line in lines if line["role"] == "customer"]


async def test_thirty_seconds_without_redis_delay_customers_but_lose_nothing(
        private_redis: RedisProcess, cache_dir: Path, tmp_path: Path) -> None:
    with serve() as wechat_api:
        async with BotApiStandIn() as telegram:
            server = kefu_server(drill_config(cache_dir, private_redis.url, wechat_api.base_url, telegram.base_url),
                                 tmp_path)
            base = await asyncio.to_thread(server.__enter__)
            try:
                await drill(base, private_redis, wechat_api, telegram)
            finally:
                await asyncio.to_thread(server.__exit__, None, None, None)


async def drill(base: str, private_redis: RedisProcess, wechat_api: StandIn, telegram: BotApiStandIn) -> None:
    http = httpx.Client(base_url=base, timeout=30)
    wechat, wecom = WeChatServer(http, "safe"), WeComServer(http)  # type: ignore[arg-type]

    def web(text: str, message_id: str) -> httpx.Response:
        return http.post("/api/chat", json={"session": "drill-web", "text": text, "message_id": message_id})

    async def telegram_says(text: str) -> str:
        before = len(telegram.sent(TG_CHAT))
        telegram.push(telegram.message_update(text, chat_id=TG_CHAT))
        await eventually(lambda: len(telegram.sent(TG_CHAT)) > before)
        return str(telegram.sent(TG_CHAT)[before]["text"])

    # Before: every channel answers.
    assert (await asyncio.to_thread(web, "怎么退货", "w1")).status_code == 200
    assert await asyncio.to_thread(wechat.say, text_xml("怎么退货", 7001)) not in (None, HELD)
    assert await telegram_says("怎么退货") != HELD

    private_redis.stop()
    down_at = time.monotonic()

    # During: customers keep writing on every channel.
    down = await asyncio.to_thread(web, "退款多久到账", "w2")
    assert down.status_code == 503 and down.json()["retry"] is True and int(down.headers["Retry-After"]) > 0
    assert await asyncio.to_thread(wechat.say, text_xml("怎么开发票", 7002)) == HELD
    assert await asyncio.to_thread(wechat.say, text_xml("运费怎么算", 7003)) == HELD
    assert await telegram_says("退款多久到账") == HELD
    wechat_api.kf_messages.append(kf_text("kf-outage-1", "怎么退货"))
    assert (await asyncio.to_thread(wecom.callback)).text == "success"
    assert (await asyncio.to_thread(http.get, "/healthz")).status_code == 503
    assert wechat_api.custom_sent == [] and wechat_api.kf_sent == []  # nothing answered while down

    await asyncio.sleep(max(0.0, OUTAGE_SECONDS - (time.monotonic() - down_at)))
    private_redis.start()  # same port, same append-only file

    # After: the web page resends its message with the same id; held messages are answered.
    resent = await asyncio.to_thread(web, "退款多久到账", "w2")
    assert resent.status_code == 200 and resent.json()["replies"] and not resent.json()["duplicate"]
    await eventually(lambda: len(wechat_api.custom_sent) >= 2)
    await eventually(lambda: len(telegram.sent(TG_CHAT)) >= 3)
    await eventually(lambda: len(wechat_api.kf_sent) >= 1)
    assert (await asyncio.to_thread(http.get, "/healthz")).status_code == 200
    await asyncio.sleep(1)  # and nothing more: each held message answered once

    assert [m["touser"] for m in wechat_api.custom_sent] == [OPENID, OPENID]
    invoice, shipping = (m["text"]["content"] for m in wechat_api.custom_sent)
    assert "发票" in invoice and "运费" in shipping  # in the order the customer wrote
    assert len(telegram.sent(TG_CHAT)) == 3 and "退款" in str(telegram.sent(TG_CHAT)[2]["text"])
    assert len(wechat_api.kf_sent) == 1 and wechat_api.kf_sent[0]["touser"] == USER

    url = private_redis.url
    assert customer_lines(url, "web:drill-web") == ["怎么退货", "退款多久到账"]
    assert customer_lines(url, f"wechat:{OPENID}") == ["怎么退货", "怎么开发票", "运费怎么算"]
    assert customer_lines(url, f"telegram:{TG_CHAT}") == ["怎么退货", "退款多久到账"]
    assert customer_lines(url, f"wecom:{USER}") == ["怎么退货"]
    http.close()
