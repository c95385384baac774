"""The Telegram channel end to end: the real python-telegram-bot, Kefu's real ASGI app and
engine, and a stand-in Bot API server on loopback (tests/bot/channels/telegram_standin.py).

Most tests run twice: ``polling`` (the stand-in serves getUpdates to PTB's updater) and
``webhook`` (updates POSTed to Kefu's ``/webhooks/telegram`` with the secret header, as
Telegram does).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.app import compose
from bot.channels.base import DeliveryDeferred
from bot.channels.telegram import (
    SECRET_HEADER,
    WEBHOOK_PATH,
    DeliveryError,
    TelegramChannel,
    check_config,
    file_url_for,
    pressed,
)
from bot.channels.telegram_send import (
    CALLBACK_PREFIX,
    MAX_CALLBACK_DATA,
    callback_data,
    keyboard,
    payload_of,
    rating_of,
    split_text,
    tg_length,
    with_rating,
    without_rating,
)
from bot.config import Config, TelegramConfig
from bot.errors import ConfigError
from bot.runtime import LiveKnowledge, Runtime, build_intent_layer, default_kb_path
from bot.storage.client import connect
from bot.storage.conversations import Store
from bot.types import Choice, ConversationState, Reply, Suggestion
from handlers.texts import say
from knowledge.schema import KnowledgeBase, load_kb, parse_kb
from tests.bot.channels.telegram_standin import BOT_ID, BOT_USERNAME, TOKEN, BotApiStandIn, Served, free_socket

# PTB itself warns when it builds a RetryAfter (an int → timedelta migration), not Kefu's code
pytestmark = pytest.mark.filterwarnings("ignore:.*retry_after.*")

SECRET = "kefu-test_secret-42"
WEBHOOK_URL = "https://kefu.example.com/webhooks/telegram"
CHAT = 4242
OVERSEAS = "fee-overseas-hong-kong-macao-taiwan-singapore-malaysia-and-other-regions"

LONG_PARAGRAPHS = [f"第{i + 1}段：保养时请注意 <b>不要</b> 用 *强力* 清洁剂 & 热水浸泡。" + "保养说明" * 40
                   for i in range(30)]
LONG_ANSWER = "\n\n".join(LONG_PARAGRAPHS)[:5000]


def small_kb() -> KnowledgeBase:
    """Two near-duplicate entries (a question that must be clarified) and a 5000-character answer."""
    entries = [
        {"id": "fee-domestic", "questions": ["国内运费怎么算", "国内的运费是多少"],
         "answer": {"zh": "国内订单满99元包邮，不满收8元。", "en": "Free domestic shipping over ¥99, else ¥8."}},
        {"id": OVERSEAS, "questions": ["海外运费怎么算", "海外的运费是多少"],
         "answer": {"zh": "海外运费按重量计算，下单时显示。", "en": "Overseas shipping is priced by weight."}},
        {"id": "care-guide", "questions": ["保养说明书全文", "full care guide"],
         "answer": {"zh": LONG_ANSWER, "en": "Care guide."}},
    ]
    return parse_kb(yaml.safe_dump(entries, allow_unicode=True))


class Kefu:
    """A running Kefu with Telegram enabled, and how the customer reaches it in this mode."""

    def __init__(self, mode: str, standin: BotApiStandIn, http: httpx.AsyncClient, runtime: Runtime,
                 channel: TelegramChannel) -> None:
        self.mode = mode
        self.standin = standin
        self.http = http
        self.runtime = runtime
        self.channel = channel

    async def send(self, update: dict[str, Any], *, redeliver: bool = False) -> None:
        if self.mode == "webhook":
            response = await self.http.post(WEBHOOK_PATH, json=update, headers={SECRET_HEADER: SECRET})
            assert response.status_code == 200, response.text
        else:
            self.standin.push(update, redeliver=redeliver)

    async def say(self, text: str | None = None, replies: int = 1, **kwargs: Any) -> list[str]:
        """Send one message and return the bot's new replies (waiting for ``replies`` of them)."""
        before = len(self.standin.sent())
        await self.send(self.standin.message_update(text, **kwargs))
        texts = await self.standin.wait_sent(before + replies)
        return texts[before:]

    async def press(self, sent: dict[str, Any], data: str, replies: int = 1) -> list[str]:
        before = len(self.standin.sent())
        await self.send(self.standin.button_update(sent, data))
        return (await self.standin.wait_sent(before + replies))[before:]

    async def quiet(self, chat_id: int = CHAT) -> None:
        """Prove nothing more was sent: a marker message's answer must be the next thing sent."""
        before = len(self.standin.sent())
        await self.send(self.standin.message_update("怎么退货", chat_id=chat_id))
        await self.standin.wait_sent(before + 1)
        await asyncio.sleep(0.1)
        assert len(self.standin.sent()) == before + 1, self.standin.texts()[before:]


def with_telegram(config: Config, standin: BotApiStandIn, mode: str, **overrides: Any) -> Config:
    settings: dict[str, Any] = {"enabled": True, "token": TOKEN, "mode": mode, "base_url": standin.base_url,
                                "webhook_url": WEBHOOK_URL, "webhook_secret": SECRET, "poll_timeout_seconds": 1}
    telegram = TelegramConfig(**{**settings, **overrides})
    return dataclasses.replace(config, channels=dataclasses.replace(config.channels, telegram=telegram))


_KNOWLEDGE: dict[str, LiveKnowledge] = {}


async def knowledge(name: str, config: Config) -> LiveKnowledge:
    """The shipped FAQ or :func:`small_kb` with its intent layer, built once per test run: the
    layer is pure computation, and rebuilding it for every start would dominate the run time."""
    if name not in _KNOWLEDGE:
        kb = small_kb() if name == "small" else load_kb(default_kb_path())
        layer = await asyncio.to_thread(build_intent_layer, kb, config)
        _KNOWLEDGE[name] = LiveKnowledge(kb, layer, 1)
    return _KNOWLEDGE[name]


@asynccontextmanager
async def running(config: Config, standin: BotApiStandIn, mode: str, *, kb: str = "shipped",
                  redis: aioredis.Redis | None = None, **overrides: Any) -> AsyncIterator[Kefu]:
    """Kefu's real ASGI app served by uvicorn on loopback, composed as ``kefu serve`` does."""
    live = await knowledge(kb, config)
    app = compose(with_telegram(config, standin, mode, **overrides),
                  redis=redis if redis is not None else connect("memory://"), knowledge=live)
    async with Served(app.asgi) as served, httpx.AsyncClient(base_url=served.url, timeout=30) as http:
        channel = app.channels["telegram"]
        assert isinstance(channel, TelegramChannel)
        yield Kefu(mode, standin, http, app.runtime, channel)


@pytest.fixture
async def standin() -> AsyncIterator[BotApiStandIn]:
    async with BotApiStandIn() as server:
        yield server


@pytest.fixture(params=["polling", "webhook"])
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def kefu(memory_config: Config, standin: BotApiStandIn, mode: str) -> AsyncIterator[Kefu]:
    """Kefu with the shipped FAQ."""
    async with running(memory_config, standin, mode) as k:
        yield k


@pytest.fixture
async def kefu_small(memory_config: Config, standin: BotApiStandIn, mode: str) -> AsyncIterator[Kefu]:
    """Kefu with :func:`small_kb`."""
    async with running(memory_config, standin, mode, kb="small") as k:
        yield k


# --- conversations, in both modes ----------------------------------------------------------------


async def test_faq_answer_as_plain_text(kefu: Kefu) -> None:
    [reply] = await kefu.say("怎么退货", chat_id=CHAT)
    entry = kefu.runtime.knowledge.kb.get("return-policy")
    assert entry is not None and reply == entry.answer["zh"]
    [sent] = kefu.standin.sent()
    assert int(sent["chat_id"]) == CHAT and "parse_mode" not in sent
    assert [[b["text"] for b in row] for row in sent["reply_markup"]["inline_keyboard"]] == [["👍", "👎"]]
    stored = await kefu.runtime.store.load_conversation(f"telegram:{CHAT}")
    assert stored is not None and stored.user_id == str(CHAT) and stored.profile.name == "小明"
    assert [line.text for line in stored.transcript][:1] == ["怎么退货"]


async def test_clarify_buttons_then_press(kefu_small: Kefu) -> None:
    [question] = await kefu_small.say("运费怎么算", chat_id=CHAT)
    assert question.startswith(say("clarify_intro", "zh"))
    sent = kefu_small.standin.sent()[-1]
    buttons = {row[0]["text"]: row[0]["callback_data"] for row in sent["reply_markup"]["inline_keyboard"]}
    assert set(buttons) == {"国内运费怎么算", "海外运费怎么算"}
    assert buttons["国内运费怎么算"] == "fee-domestic"
    overseas = buttons["海外运费怎么算"]  # the entry id is longer than Telegram's 64 bytes
    assert overseas.startswith(CALLBACK_PREFIX) and len(overseas.encode()) <= MAX_CALLBACK_DATA

    [answer] = await kefu_small.press(sent, overseas)
    assert answer == "海外运费按重量计算，下单时显示。"  # in the customer's language
    assert len(kefu_small.standin.called("answerCallbackQuery")) == 1
    [edit] = kefu_small.standin.called("editMessageReplyMarkup")
    assert int(edit["chat_id"]) == CHAT and "reply_markup" not in edit  # keyboard removed
    stored = await kefu_small.runtime.store.load_conversation(f"telegram:{CHAT}")
    choice = list(buttons.values()).index(overseas) + 1
    assert stored is not None and stored.transcript[-2].text == str(choice)  # the choice, as if typed
    assert stored.transcript[-2].meta["decision"]["entry_id"] == OVERSEAS

    # a button of an old question (still on screen in another client): its words are the question
    [late] = await kefu_small.press(sent, "fee-domestic")
    assert late == "国内订单满99元包邮，不满收8元。"


async def rate(kefu: Kefu, sent: dict[str, Any], vote: str) -> dict[str, Any]:
    """Press 👍 or 👎 under ``sent``; the notice Telegram shows the customer (no new message)."""
    [data] = [b["callback_data"] for row in sent["reply_markup"]["inline_keyboard"] for b in row if b["text"] == vote]
    methods = ("answerCallbackQuery", "editMessageReplyMarkup")  # the notice, then the rating row taken away
    before = [len(kefu.standin.called(method)) for method in methods]
    await kefu.send(kefu.standin.button_update(sent, data))
    async with asyncio.timeout(20):
        while any(len(kefu.standin.called(method)) == count for method, count in zip(methods, before, strict=True)):
            await asyncio.sleep(0.02)
    return kefu.standin.called("answerCallbackQuery")[-1]


async def test_thumbs_down_under_an_answer_puts_it_on_the_admin_review_list(kefu: Kefu) -> None:
    await kefu.say("怎么退货", chat_id=CHAT)
    answered = kefu.standin.sent()[-1]
    notice = await rate(kefu, answered, "👎")
    assert notice["text"] == say("telegram_rated_wrong", "zh")  # a notice, not another chat message
    edit = kefu.standin.called("editMessageReplyMarkup")[-1]
    assert int(edit["chat_id"]) == CHAT and "reply_markup" not in edit  # rated once: the row goes
    records = kefu.runtime.store.records
    [row] = await records.unanswered()
    assert (row["text"], row["reason"], row["entry_id"]) == ("怎么退货", "thumbs_down", "return-policy")

    await rate(kefu, answered, "👎")  # the same buttons pressed again in another client
    assert len(await records.unanswered()) == 1
    before = len(kefu.standin.sent())
    await kefu.say("退款多久到账", chat_id=CHAT)
    assert (await rate(kefu, kefu.standin.sent()[-1], "👍"))["text"] == say("telegram_rated", "zh")
    assert len(kefu.standin.sent()) == before + 1  # the vote itself sends nothing into the chat
    [day] = await records.daily_counters([time.strftime("%Y-%m-%d", time.gmtime())])
    assert day["thumbs_up"] == 1 and day["thumbs_down"] == 1
    stale = await rate(kefu, {**answered, "reply_markup": {"inline_keyboard": [[
        {"text": "👎", "callback_data": "kefu!999999:0"}]]}}, "👎")  # an answer this chat never had
    assert stale["text"] == say("telegram_rated_wrong", "zh") and len(await records.unanswered()) == 1


async def test_rating_buttons_go_under_an_answer_only_and_leave_related_questions(kefu_small: Kefu) -> None:
    await kefu_small.say("运费怎么算", chat_id=CHAT)  # a clarify: nothing to rate yet
    question = kefu_small.standin.sent()[-1]
    assert all(b["text"] not in ("👍", "👎") for row in question["reply_markup"]["inline_keyboard"] for b in row)
    markup = with_rating(await keyboard(kefu_small.runtime.store, (Suggestion("相关问题", "fee-domestic"),)), "77")
    assert [[b.text for b in row] for row in markup.inline_keyboard] == [["相关问题"], ["👍", "👎"]]
    assert rating_of("kefu!77:0") == ("77", False) and rating_of("kefu!77:1") == ("77", True)
    assert rating_of("fee-domestic") is None and rating_of("kefu!77:x") is None
    kept = without_rating(markup)
    assert kept is not None and [[b.text for b in row] for row in kept.inline_keyboard] == [["相关问题"]]
    assert await callback_data(kefu_small.runtime.store, "kefu!77:0") != "kefu!77:0"  # a payload can't pose as a vote


def test_a_pressed_button_is_a_typed_choice() -> None:
    assert pressed("fee-domestic", "国内运费怎么算") == Choice("fee-domestic", "国内运费怎么算")
    assert pressed(None, "国内运费怎么算") == Choice("", "国内运费怎么算")  # a long payload that expired: its words
    assert pressed(None, "") is None and pressed("", "") is None  # nothing to go on: no turn
    offered = ("fee-domestic", "fee-overseas")
    assert Choice("fee-overseas", "海外运费怎么算").said(offered) == "2"  # recorded as if typed
    assert Choice("fee-old", "旧问题").said(offered) == "旧问题" and Choice("x").said(()) == "x"


@pytest.mark.parametrize("text", ["转人工", "/human"])
async def test_human_request_hands_off(kefu: Kefu, text: str) -> None:
    await kefu.runtime.desk.mark_online("li")  # type: ignore[attr-defined]  # an agent there to wait for
    [reply] = await kefu.say(text, chat_id=CHAT)
    assert "人工客服" in reply and "分钟" in reply
    stored = await kefu.runtime.store.load_conversation(f"telegram:{CHAT}")
    assert stored is not None and stored.state is ConversationState.WAITING
    assert stored.handoff is not None and stored.handoff.reason == "human_request"


async def test_human_command_in_english(kefu: Kefu) -> None:
    [hello] = await kefu.say("/start", chat_id=CHAT, language="en")
    assert hello == say("telegram_start", "en")
    await kefu.runtime.desk.mark_online("li")  # type: ignore[attr-defined]
    [reply] = await kefu.say("/human", chat_id=CHAT, language="en")
    assert "agent" in reply and "minutes" in reply
    stored = await kefu.runtime.store.load_conversation(f"telegram:{CHAT}")
    assert stored is not None and stored.handoff is not None and stored.handoff.reason == "human_request"


async def test_complaint_apologises_and_hands_off(kefu: Kefu) -> None:
    [reply] = await kefu.say("我要投诉你们，太差劲了", chat_id=CHAT)
    assert "抱歉" in reply and "人工客服" in reply
    stored = await kefu.runtime.store.load_conversation(f"telegram:{CHAT}")
    assert stored is not None and stored.state is ConversationState.WAITING
    assert stored.handoff is not None and stored.handoff.reason == "complaint"


async def test_photo_is_acknowledged_and_kept_for_the_agent(kefu: Kefu) -> None:
    photo = [{"file_id": "small-photo", "file_unique_id": "s1", "width": 90, "height": 60},
             {"file_id": "big-photo", "file_unique_id": "b1", "width": 1280, "height": 960}]
    [reply] = await kefu.say(None, chat_id=CHAT, photo=photo)
    assert reply == say("attachment", "zh")
    document = {"file_id": "doc-1", "file_unique_id": "d1", "file_name": "发票.pdf"}
    [reply] = await kefu.say(None, chat_id=CHAT, document=document, caption="")
    stored = await kefu.runtime.store.load_conversation(f"telegram:{CHAT}")
    assert stored is not None
    kept = [line.meta.get("attachments") for line in stored.transcript if line.meta.get("attachments")]
    assert kept == [[{"kind": "photo", "ref": "big-photo", "name": ""}],
                    [{"kind": "document", "ref": "doc-1", "name": "发票.pdf"}]]


async def test_sticker_is_acknowledged_in_english(kefu: Kefu) -> None:
    await kefu.say("How do I return an item?", chat_id=CHAT, language="en")
    sticker = {"file_id": "stk-1", "file_unique_id": "k1", "width": 512, "height": 512, "is_animated": False,
               "is_video": False, "type": "regular", "emoji": "👍"}
    [reply] = await kefu.say(None, chat_id=CHAT, sticker=sticker, language="en")
    assert reply == say("attachment", "en")


async def test_redelivered_update_is_answered_once(kefu: Kefu) -> None:
    update = kefu.standin.message_update("怎么退货", chat_id=CHAT)
    await kefu.send(update)
    await kefu.standin.wait_sent(1)
    await kefu.send(update, redeliver=True)
    await kefu.quiet()
    assert len(kefu.standin.sent()) == 2


async def test_429_is_waited_out_in_order(kefu: Kefu) -> None:
    kefu.standin.throttle_sends = 1
    kefu.standin.retry_after = 1
    first = kefu.standin.message_update("怎么退货", chat_id=CHAT)
    second = kefu.standin.message_update("运费多少钱", chat_id=CHAT)
    if kefu.mode == "webhook":  # Telegram may POST the next update while the first still waits
        task = asyncio.create_task(kefu.send(first))
        while not kefu.standin.failed:
            await asyncio.sleep(0.01)
        await asyncio.gather(task, kefu.send(second))
    else:
        await kefu.send(first)
        await kefu.send(second)
    texts = await kefu.standin.wait_sent(2)
    kb = kefu.runtime.knowledge.kb
    assert texts[0] == kb.get("return-policy").answer["zh"]  # type: ignore[union-attr]
    assert texts[1] == kb.get("shipping-fee").answer["zh"]  # type: ignore[union-attr]
    [throttled] = kefu.standin.failed
    assert throttled.status == 429 and throttled.params["text"] == texts[0]
    delivered = next(c for c in kefu.standin.calls if c.method == "sendMessage")
    assert delivered.at - throttled.at >= 1.0


async def test_flood_control_outlasting_the_retries_is_held_not_dropped(memory_config: Config,
                                                                       standin: BotApiStandIn) -> None:
    async with running(memory_config, standin, "webhook", max_retries=1) as kefu:
        standin.throttle_sends, standin.retry_after = 4, 1  # four 429s in a row: more than one retry
        await kefu.send(standin.message_update("怎么退货", chat_id=CHAT))
        [text] = await standin.wait_sent(1, timeout=30)
        assert text == kefu.runtime.knowledge.kb.get("return-policy").answer["zh"]  # type: ignore[union-attr]
        assert [c.status for c in standin.failed] == [429, 429, 429, 429]


async def test_long_answer_is_split_on_paragraphs(kefu_small: Kefu) -> None:
    parts = await kefu_small.say("保养说明书全文", replies=2, chat_id=CHAT)
    assert len(parts) == 2 and all(tg_length(p) <= 4096 for p in parts)
    entry = kefu_small.runtime.knowledge.kb.get("care-guide")
    assert entry is not None and len(entry.answer["zh"]) > 4096
    assert "\n\n".join(parts) == entry.answer["zh"]  # cut between paragraphs, nothing lost
    assert "<b>不要</b>" in parts[0] and "*强力*" in parts[0]  # sent as is, no markup parsing
    assert all("parse_mode" not in s for s in kefu_small.standin.sent())
    await kefu_small.quiet()


# --- groups -----------------------------------------------------------------------------------------

GROUP = -1001234


async def test_group_answers_only_when_addressed(memory_config: Config, standin: BotApiStandIn) -> None:
    async with running(memory_config, standin, "webhook") as kefu:
        await kefu.send(standin.message_update("怎么退货", chat_id=GROUP, user_id=7, chat_type="supergroup"))
        assert standin.sent() == []
        [answer] = await kefu.say(f"@{BOT_USERNAME} 怎么退货", chat_id=GROUP, user_id=7, chat_type="supergroup")
        assert answer == kefu.runtime.knowledge.kb.get("return-policy").answer["zh"]  # type: ignore[union-attr]
        assert standin.sent()[-1]["reply_parameters"]["message_id"] > 0  # replies to the asker
        [help_text] = await kefu.say(f"/help@{BOT_USERNAME}", chat_id=GROUP, user_id=7, chat_type="supergroup")
        assert help_text == say("telegram_help", "zh")
        await kefu.send(standin.message_update("/help@other_bot", chat_id=GROUP, user_id=7, chat_type="supergroup"))
        bot_message = {"message_id": 1, "date": int(time.time()), "chat": {"id": GROUP, "type": "supergroup"},
                       "from": {"id": BOT_ID, "is_bot": True, "first_name": "Kefu"}, "text": "..."}
        [again] = await kefu.say("怎么退货", chat_id=GROUP, user_id=7, chat_type="supergroup",
                                 reply_to_message=bot_message)
        assert again == answer
        assert len(standin.sent()) == 3
        stored = await kefu.runtime.store.load_conversation(f"telegram:{GROUP}")
        assert stored is not None and stored.transcript[0].text == "怎么退货"  # mention removed


# --- webhook security and registration ---------------------------------------------------------------


async def test_webhook_secret_is_required(memory_config: Config, standin: BotApiStandIn) -> None:
    async with running(memory_config, standin, "webhook") as kefu:
        update = standin.message_update("怎么退货", chat_id=CHAT)
        for headers in ({}, {SECRET_HEADER: "wrong"}, {SECRET_HEADER: SECRET + "x"}, {SECRET_HEADER: ""}):
            response = await kefu.http.post(WEBHOOK_PATH, json=update, headers=headers)
            assert response.status_code == 403
        assert standin.sent() == []
        bad = await kefu.http.post(WEBHOOK_PATH, content=b"not json", headers={SECRET_HEADER: SECRET})
        assert bad.status_code == 400
        await kefu.send(update)  # the same update, signed: answered (the rejected ones left no trace)
        assert len(standin.sent()) == 1



async def test_hostile_signed_updates_are_400_not_500(memory_config: Config, standin: BotApiStandIn,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    """Someone with the secret (or a bug upstream) posts deeply nested JSON or a lone surrogate."""
    async with running(memory_config, standin, "webhook") as kefu:
        headers = {SECRET_HEADER: SECRET, "content-type": "application/json"}
        update = standin.message_update("怎么退货", chat_id=CHAT)
        nested = b'{"update_id": 1, "message": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
        replies = [b'{"update_id": 2, "message": {"message_id": 1, "date": 1, "chat": {"id": 1, "type": "private"}'
                   + b', "reply_to_message": {"message_id": 1, "date": 1, "chat": {"id": 1, "type": "private"}' * 60
                   + b"}" * 61 + b"}"]
        surrogate = json.dumps(update).replace("\\u600e", "\\ud800").encode()  # JSON escapes: valid JSON, bad text
        for body in (nested, replies[0], surrogate):
            response = await kefu.http.post(WEBHOOK_PATH, content=body, headers=headers)
            assert response.status_code == 400, response.text
        assert not [r for r in caplog.records if r.exc_info]
        assert standin.sent() == []
        [registered] = [standin.webhook]
        assert registered is not None and registered["url"] == WEBHOOK_URL
        assert registered["secret_token"] == SECRET
        assert registered["allowed_updates"] == ["message", "callback_query"]
        assert standin.called("getUpdates") == []


async def test_polling_asks_only_for_handled_updates(memory_config: Config, standin: BotApiStandIn) -> None:
    async with running(memory_config, standin, "polling") as kefu:
        await kefu.say("怎么退货", chat_id=CHAT)
        assert standin.called("deleteWebhook")  # polling and a webhook cannot coexist
        polls = standin.called("getUpdates")
        assert polls and all(p["allowed_updates"] == ["message", "callback_query"] for p in polls)
        routes = await kefu.http.post(WEBHOOK_PATH, json={}, headers={SECRET_HEADER: SECRET})
        assert routes.status_code == 404  # no webhook route in polling mode
    assert max(standin.offsets) > 0  # the offset moved past what was handled


# --- restart, delivery and Telegram errors ------------------------------------------------------------


async def test_update_redelivered_after_restart_is_not_answered_twice(
        memory_config: Config, standin: BotApiStandIn, redis_client: aioredis.Redis) -> None:
    update = standin.message_update("怎么退货", chat_id=CHAT)
    store = Store(redis_client, memory_config.store)
    shared = _Unclosable(redis_client)
    async with running(memory_config, standin, "polling", redis=shared) as kefu:  # type: ignore[arg-type]
        await kefu.send(update)
        await standin.wait_sent(1)
    async with running(memory_config, standin, "polling", redis=shared) as kefu:  # type: ignore[arg-type]
        await kefu.send(update, redeliver=True)  # the offset was lost in a crash
        await kefu.quiet()
    assert len(standin.sent()) == 2
    assert await store.load_conversation(f"telegram:{CHAT}") is not None


class _Unclosable:
    """The test's Redis client, surviving the runtime's close so a second start can reuse it."""

    def __init__(self, client: aioredis.Redis) -> None:
        self._client = client

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    async def aclose(self) -> None:
        return None


async def test_deliver_outside_a_turn_and_blocked_chat(memory_config: Config, standin: BotApiStandIn) -> None:
    async with running(memory_config, standin, "webhook") as kefu:
        await kefu.say("转人工", chat_id=CHAT)
        conversation = await kefu.runtime.store.load_conversation(f"telegram:{CHAT}")
        assert conversation is not None
        await kefu.channel.deliver(conversation, [Reply("您好，我是客服小王，马上为您处理。"), Reply("第二条")])
        assert standin.texts()[-2:] == ["您好，我是客服小王，马上为您处理。", "第二条"]
        standin.blocked_chats.add(CHAT)
        with pytest.raises(DeliveryError, match="blocked"):  # the desk tells the agent
            await kefu.channel.deliver(conversation, [Reply("还在吗？")])
        assert standin.failed[-1].status == 403
        await kefu.send(standin.message_update("在吗", chat_id=CHAT))  # a turn's reply: logged, not raised
        assert standin.failed[-1].status == 403
        health = await kefu.http.get("/healthz")
        assert health.status_code == 200 and "telegram" in health.json()["channels"]


async def test_bad_gateway_is_retried(memory_config: Config, standin: BotApiStandIn) -> None:
    async with running(memory_config, standin, "webhook") as kefu:
        standin.break_sends = 1
        [reply] = await kefu.say("怎么退货", chat_id=CHAT)
        assert reply == kefu.runtime.knowledge.kb.get("return-policy").answer["zh"]  # type: ignore[union-attr]
        assert [c.status for c in standin.failed] == [502]


PLATFORM_OUTAGE_SECONDS = float(os.environ.get("KEFU_PLATFORM_OUTAGE_SECONDS", "60"))


async def test_telegram_down_for_a_minute_loses_no_answer(memory_config: Config, standin: BotApiStandIn) -> None:
    """sendMessage answers 502 for a minute: the customer's answers, and an agent's reply, are
    held and go out in order once Telegram is back; the webhook itself never fails."""
    async with running(memory_config, standin, "webhook") as kefu:
        standin.sends_down_until = time.monotonic() + PLATFORM_OUTAGE_SECONDS
        await kefu.send(standin.message_update("怎么退货", chat_id=CHAT))  # 200: the turn is saved
        await kefu.send(standin.message_update("退款多久到账", chat_id=CHAT))
        conversation = await kefu.runtime.store.load_conversation(f"telegram:{CHAT}")
        assert conversation is not None
        with pytest.raises(DeliveryDeferred, match="retried by itself"):  # the agent console is told
            await kefu.channel.deliver(conversation, [Reply("您好，我是客服小王。")])
        assert standin.sent() == []
        texts = await standin.wait_sent(3, timeout=PLATFORM_OUTAGE_SECONDS + 30)
        kb = kefu.runtime.knowledge.kb
        assert texts == [kb.get("return-policy").answer["zh"], kb.get("refund-time").answer["zh"],  # type: ignore[union-attr]
                         "您好，我是客服小王。"]
        await asyncio.sleep(0.5)
        assert len(standin.sent()) == 3  # each once


async def test_unreachable_telegram_does_not_stop_kefu(memory_config: Config, standin: BotApiStandIn) -> None:
    closed = free_socket()
    nowhere = f"http://127.0.0.1:{closed.getsockname()[1]}/bot"
    closed.close()
    async with running(memory_config, standin, "webhook", base_url=nowhere, network_retries=0) as kefu:
        health = await kefu.http.get("/healthz")
        assert health.status_code == 200 and "telegram" in health.json()["channels"]
        update = standin.message_update("怎么退货", chat_id=CHAT)
        response = await kefu.http.post(WEBHOOK_PATH, json=update, headers={SECRET_HEADER: SECRET})
        assert response.status_code == 503  # Telegram will deliver it again once we are connected
    assert standin.calls == []


async def test_rejected_token_is_a_config_error(memory_config: Config, standin: BotApiStandIn) -> None:
    config = with_telegram(memory_config, standin, "polling")
    config = dataclasses.replace(config, channels=dataclasses.replace(
        config.channels, telegram=dataclasses.replace(config.channels.telegram, token="999:wrong")))
    runtime = await Runtime.start(config, redis=connect("memory://"))
    channel = TelegramChannel(config.channels.telegram, runtime.engine, runtime.store)
    with pytest.raises(ConfigError, match=r"channels\.telegram\.token"):
        await channel.start()
    await channel.stop()


# --- pure pieces -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "key"),
    [
        ({"token": ""}, "channels.telegram.token"),
        ({"mode": "push"}, "channels.telegram.mode"),
        ({"mode": "webhook", "webhook_url": ""}, "channels.telegram.webhook_url"),
        ({"mode": "webhook", "webhook_url": "http://kefu.example.com/webhooks/telegram"},
         "channels.telegram.webhook_url"),
        ({"mode": "webhook", "webhook_secret": ""}, "channels.telegram.webhook_secret"),
        ({"mode": "webhook", "webhook_secret": "has spaces"}, "channels.telegram.webhook_secret"),
        ({"base_url": "api.telegram.org"}, "channels.telegram.base_url"),
    ],
)
def test_config_errors_name_the_key(changes: dict[str, Any], key: str) -> None:
    config = TelegramConfig(enabled=True, token=TOKEN, webhook_url=WEBHOOK_URL, webhook_secret=SECRET)
    check_config(config)  # the base is valid
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        check_config(dataclasses.replace(config, **changes))
    check_config(dataclasses.replace(config, enabled=False, **changes))  # disabled: not checked


async def test_server_start_reports_the_missing_key(memory_config: Config, standin: BotApiStandIn) -> None:
    config = with_telegram(memory_config, standin, "webhook", webhook_secret="")
    live = await knowledge("shipped", memory_config)
    with pytest.raises(ConfigError, match=r"channels\.telegram\.webhook_secret: required"):
        compose(config, redis=connect("memory://"), knowledge=live)  # the channel is built before the app
    assert standin.calls == []  # nothing was sent to Telegram


def test_file_url_follows_base_url() -> None:
    assert file_url_for(TelegramConfig()) == "https://api.telegram.org/file/bot"
    assert file_url_for(TelegramConfig(base_url="http://127.0.0.1:8081/bot")) == "http://127.0.0.1:8081/file/bot"
    assert file_url_for(TelegramConfig(base_file_url="https://files.example/f/")) == "https://files.example/f/"


def test_split_text() -> None:
    assert split_text("短回答") == ["短回答"]
    assert split_text("   ") == []
    paragraphs = ["a" * 3000, "b" * 3000, "c" * 100]
    assert split_text("\n\n".join(paragraphs)) == [paragraphs[0], "\n\n".join(paragraphs[1:])]
    lines = "\n".join(["行" * 1000] * 5)
    assert [len(p) for p in split_text(lines)] == [4003, 1000]
    unbroken = "x" * 9000
    assert split_text(unbroken) == ["x" * 4096, "x" * 4096, "x" * 808]
    emoji = "😀" * 3000  # two UTF-16 units each, as Telegram counts
    parts = split_text(emoji)
    assert "".join(parts) == emoji and all(tg_length(p) <= 4096 for p in parts) and len(parts) == 2


async def test_long_callback_payload_goes_through_the_store(redis_client: aioredis.Redis) -> None:
    store = Store(redis_client, Config().store)
    assert await callback_data(store, "fee-domestic") == "fee-domestic"
    long_payload = "entry-" + "很长的条目编号" * 10
    data = await callback_data(store, long_payload)
    assert data.startswith(CALLBACK_PREFIX) and len(data.encode()) <= MAX_CALLBACK_DATA
    assert await payload_of(store, data) == long_payload
    sneaky = CALLBACK_PREFIX + "abc"  # a short payload that looks like a key is mapped too
    assert await payload_of(store, await callback_data(store, sneaky)) == sneaky
    assert await payload_of(store, CALLBACK_PREFIX + "0" * 32) is None



# --- bad input: fuzzed updates ----------------------------------------------------------------------

_json = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=30),
                     lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
                     max_leaves=20)
_id = st.one_of(st.integers(min_value=-(2**63), max_value=2**63), st.text(max_size=12), st.none())


@st.composite
def _updates(draw: st.DrawFn) -> Any:
    """Update-shaped JSON: half well-typed with odd values (they reach a turn), half with wrong
    types and missing fields (refused with 400), now and then any JSON at all."""
    if draw(st.integers(0, 5)) == 0:
        return draw(_json)
    typed = draw(st.booleans())
    ids = st.integers(min_value=-(2**40), max_value=2**40) if typed else _id
    texts = st.text(max_size=300) if typed else st.one_of(st.text(max_size=300), _json)
    user = draw(st.fixed_dictionaries({"id": ids}, optional={"is_bot": st.booleans(), "first_name": texts,
                                                             "language_code": st.sampled_from(["zh-hans", "en", ""])}))
    chat = draw(st.fixed_dictionaries({"id": ids, "type": st.sampled_from(["private"] * 4 + ["group", "supergroup",
                                                                                      "channel", "", "???"])}))
    entity = st.fixed_dictionaries({"type": st.sampled_from(["mention", "bot_command", "url"]),
                                    "offset": st.integers(-5, 400), "length": st.integers(-5, 400)})
    message = draw(st.fixed_dictionaries(
        {"message_id": ids, "date": st.integers(0, 2**32) if typed else _id, "chat": st.just(chat)},
        optional={"from": st.just(user), "text": texts, "caption": texts, "entities": st.lists(entity, max_size=3),
                  "photo": st.lists(st.fixed_dictionaries({"file_id": texts, "file_unique_id": texts,
                                                           "width": ids, "height": ids}), max_size=2),
                  "document": st.fixed_dictionaries({"file_id": texts}) if typed else _json,
                  "sticker": st.fixed_dictionaries({"file_id": texts}) if typed else _json}))
    kind = draw(st.sampled_from(["message"] * 4 + ["edited_message", "callback_query", "channel_post", "other"]))
    body: Any = message
    if kind == "callback_query":
        body = {"id": draw(texts), "from": user, "data": draw(texts), "message": message, "chat_instance": "x"}
    return {"update_id": draw(ids), kind: body}


async def test_fuzzed_updates_get_4xx_or_200_never_500(memory_config: Config, standin: BotApiStandIn) -> None:
    async with running(memory_config, standin, "webhook") as kefu:
        url = str(kefu.http.base_url).rstrip("/") + WEBHOOK_PATH

        @settings(max_examples=200, deadline=None, database=None, derandomize=True)
        @given(update=_updates())
        def post(update: Any) -> None:
            message = update.get("message") if isinstance(update, dict) else None
            if isinstance(message, dict) and type(update.get("update_id")) is int:
                # hypothesis repeats small ids: make each update and customer new, so each can get an answer
                update["update_id"] = standin.next_update_id()
                for part in (message["chat"], message.get("from")):
                    if isinstance(part, dict) and type(part.get("id")) is int:
                        part["id"] = update["update_id"]
            before = len(standin.sent())
            r = httpx.post(url, json=update, headers={SECRET_HEADER: SECRET}, timeout=30)
            assert r.status_code < 500, (update, r.status_code, r.text)
            if r.status_code == 200 and isinstance(message, dict) and message["chat"].get("type") == "private" \
                    and isinstance(message.get("text"), str) and message["text"].strip():
                assert len(standin.sent()) > before, update  # a customer who wrote something gets an answer

        await asyncio.to_thread(post)
        assert await kefu.say("怎么退货", chat_id=CHAT)  # and the channel still answers
