"""The WeChat Official Account channel, driven exactly as WeChat drives it.

Requests are signed and encrypted with wechatpy (the same helpers WeChat's own SDK examples
use) and sent to the real ASGI app; customer-service messages and access tokens go to a
stand-in WeChat API on loopback.  Every test runs against the embedded store and a real Redis.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis
import xmltodict
from hypothesis import given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient
from wechatpy import parse_message
from wechatpy.crypto import WeChatCrypto
from wechatpy.utils import WeChatSigner

from bot import keys
from bot.channels.base import DeliveryDeferred
from bot.channels.wechat import WeChatChannel, custom_message, passive_text
from bot.channels.wechat_common import menu_pick, parse_xml
from bot.config import Config, StoreConfig, WeChatConfig
from bot.errors import BadRequest
from bot.privacy import mask_logs
from bot.storage.conversations import Store
from bot.types import Choice, Conversation, Decision, InboundMessage, Reply, Suggestion, TurnResult
from tests.bot.channels.wechat_standin import Backend, StandIn, serve, wait_for
from tests.conftest import require_redis
from tests.loop import portal

TOKEN = "kefu-test-token"
AES_KEY = base64.b64encode(b"0123456789abcdef0123456789abcdef").decode().rstrip("=")
APP_ID = "wx5823bf96d3bd56c7"
ACCOUNT = "gh_kefu_test"
OPENID = "oKefuCustomer0001"

COMPLAINT_APOLOGY = "非常抱歉给您带来了不好的体验"


# --- signing like WeChat ------------------------------------------------------------------------

def sign(*parts: str) -> str:
    signer = WeChatSigner()
    signer.add_data(*parts)
    return str(signer.signature)


def text_xml(content: str, msg_id: int, openid: str = OPENID, created: int | None = None) -> str:
    return (f"<xml><ToUserName><![CDATA[{ACCOUNT}]]></ToUserName><FromUserName><![CDATA[{openid}]]></FromUserName>"
            f"<CreateTime>{created or int(time.time())}</CreateTime><MsgType><![CDATA[text]]></MsgType>"
            f"<Content><![CDATA[{content}]]></Content><MsgId>{msg_id}</MsgId></xml>")


def image_xml(msg_id: int) -> str:
    return (f"<xml><ToUserName><![CDATA[{ACCOUNT}]]></ToUserName><FromUserName><![CDATA[{OPENID}]]></FromUserName>"
            f"<CreateTime>{int(time.time())}</CreateTime><MsgType><![CDATA[image]]></MsgType>"
            f"<PicUrl><![CDATA[http://mmbiz.qpic.cn/broken-parcel.jpg]]></PicUrl>"
            f"<MediaId><![CDATA[media-broken-parcel]]></MediaId><MsgId>{msg_id}</MsgId></xml>")


def event_xml(event: str, created: int) -> str:
    return (f"<xml><ToUserName><![CDATA[{ACCOUNT}]]></ToUserName><FromUserName><![CDATA[{OPENID}]]></FromUserName>"
            f"<CreateTime>{created}</CreateTime><MsgType><![CDATA[event]]></MsgType>"
            f"<Event><![CDATA[{event}]]></Event></xml>")


class WeChatServer:
    """Posts messages to the webhook the way WeChat's servers do, and reads the passive reply."""

    def __init__(self, client: TestClient, mode: str = "safe") -> None:
        self.client = client
        self.mode = mode  # "plain" | "compatible" | "safe"
        self.crypto = WeChatCrypto(TOKEN, AES_KEY, APP_ID)

    def query(self, timestamp: int | None = None, nonce: str = "1320562132") -> dict[str, str]:
        ts = str(timestamp or int(time.time()))
        return {"signature": sign(TOKEN, ts, nonce), "timestamp": ts, "nonce": nonce, "openid": OPENID}

    def post(self, xml: str, *, timestamp: int | None = None) -> httpx.Response:
        query = self.query(timestamp)
        if self.mode == "plain":
            response: httpx.Response = self.client.post("/webhooks/wechat", params=query, content=xml.encode())
            return response
        sealed = xmltodict.parse(self.crypto.encrypt_message(xml, query["nonce"], query["timestamp"]))["xml"]
        query.update(encrypt_type="aes", msg_signature=sealed["MsgSignature"])
        inner = xml[len("<xml>"):-len("</xml>")] if self.mode == "compatible" else \
            f"<ToUserName><![CDATA[{ACCOUNT}]]></ToUserName>"
        body = f"<xml>{inner}<Encrypt><![CDATA[{sealed['Encrypt']}]]></Encrypt></xml>"
        sent: httpx.Response = self.client.post("/webhooks/wechat", params=query, content=body.encode())
        return sent

    def reply(self, response: httpx.Response) -> str | None:
        """The passive reply's text (decrypted and signature-checked in safe mode), None for success."""
        assert response.status_code == 200, response.text
        if response.text == "success":
            return None
        xml = response.text
        if self.mode != "plain":
            sealed = xmltodict.parse(xml)["xml"]
            xml = self.crypto.decrypt_message(xml, sealed["MsgSignature"], sealed["TimeStamp"], sealed["Nonce"])
        message = parse_message(xml)
        assert message.type == "text" and message.source == ACCOUNT and message.target == OPENID
        return str(message.content)

    def say(self, xml: str) -> str | None:
        return self.reply(self.post(xml))


# --- the app ---------------------------------------------------------------------------------------

@pytest.fixture(params=["memory", "redis"])
def backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    if request.param == "redis":
        require_redis()
    b = Backend(request.param)
    b.clear()
    yield b
    b.clear()


@pytest.fixture
def standin() -> Iterator[StandIn]:
    with serve() as s:
        yield s


class SlowLayer:
    """The real intent layer, made slow: a turn that misses WeChat's 5-second window."""

    def __init__(self, inner: Any, delay: float) -> None:
        self.inner = inner
        self.delay = delay

    def is_quick(self, text: str, conversation: Conversation) -> bool:
        return False

    def decide(self, text: str, conversation: Conversation, choice: Choice | None = None) -> Decision:
        time.sleep(self.delay)
        decision: Decision = self.inner.decide(text, conversation, choice)
        return decision


@dataclasses.dataclass
class App:
    client: TestClient
    wechat: WeChatServer
    state: Any

    @property
    def channel(self) -> WeChatChannel:
        channel: WeChatChannel = self.state.channels["wechat"]
        return channel

    def conversation(self, openid: str = OPENID) -> Conversation | None:
        conv: Conversation | None = portal(self.client).call(
            self.state.runtime.store.load_conversation, f"wechat:{openid}")
        return conv

    def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        return portal(self.client).call(fn, *args)


@pytest.fixture
def make_app(config: Config, backend: Backend, standin: StandIn) -> Iterator[Callable[..., Any]]:
    @contextmanager
    def make(mode: str = "safe", slow: float = 0.0, **wechat: Any) -> Iterator[App]:
        from bot.app import compose

        settings: dict[str, Any] = {"enabled": True, "token": TOKEN, "app_id": APP_ID, "app_secret": "secret",
                                    "encoding_aes_key": "" if mode == "plain" else AES_KEY,
                                    "api_base_url": standin.base_url, **wechat}
        cfg = dataclasses.replace(
            config, store=StoreConfig(url="memory://"),
            channels=dataclasses.replace(config.channels, wechat=WeChatConfig(**settings)))

        kefu = compose(cfg, redis=backend.client())
        with TestClient(kefu.asgi) as client:
            rt = kefu.runtime
            if slow:
                rt._knowledge = dataclasses.replace(rt._knowledge, layer=SlowLayer(rt._knowledge.layer, slow))
            yield App(client, WeChatServer(client, mode), kefu.app.state)

    yield make


# --- verification and rejection ----------------------------------------------------------------------

def test_server_url_verification_echoes_echostr(make_app: Callable[..., Any]) -> None:
    with make_app() as app:
        query = {**app.wechat.query(), "echostr": "5837397520521258413"}
        r = app.client.get("/webhooks/wechat", params=query)
        assert r.status_code == 200 and r.text == "5837397520521258413"
        forged = {**query, "signature": sign("not-the-token", query["timestamp"], query["nonce"])}
        assert app.client.get("/webhooks/wechat", params=forged).status_code == 403


BILLION_LAUGHS = ('<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
                  '<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>'
                  f"<xml><ToUserName>{ACCOUNT}</ToUserName><FromUserName>{OPENID}</FromUserName>"
                  "<CreateTime>1</CreateTime><MsgType>text</MsgType><Content>&lol2;</Content><MsgId>9</MsgId></xml>")
EXTERNAL_ENTITY = ('<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
                   f"<xml><ToUserName>{ACCOUNT}</ToUserName><FromUserName>{OPENID}</FromUserName>"
                   "<CreateTime>1</CreateTime><MsgType>text</MsgType><Content>&xxe;</Content><MsgId>8</MsgId></xml>")


@pytest.mark.parametrize("mode", ["plain", "safe"])
def test_forged_stale_hostile_and_oversized_requests_are_refused(make_app: Callable[..., Any], mode: str) -> None:
    with make_app(mode) as app:
        wechat = app.wechat
        good = text_xml("怎么退货", 5001)
        # forged signature
        query = {**wechat.query(), "signature": "0" * 40}
        assert app.client.post("/webhooks/wechat", params=query, content=good.encode()).status_code == 403
        # stale timestamp (a captured request replayed ten minutes later), even when correctly signed
        assert wechat.post(good, timestamp=int(time.time()) - 600).status_code == 403
        # DOCTYPE / entity tricks, correctly signed (and encrypted in safe mode)
        assert wechat.post(BILLION_LAUGHS).status_code == 400
        assert wechat.post(EXTERNAL_ENTITY).status_code == 400
        # garbage and oversized bodies
        sealed_query = {**wechat.query(), **({"encrypt_type": "aes", "msg_signature": "0" * 40} if mode == "safe" else {})}
        assert app.client.post("/webhooks/wechat", params=sealed_query, content=b"\x00not xml").status_code == 400
        huge = text_xml("退" * 40_000, 5002)
        assert wechat.post(huge).status_code == 413
        if mode == "safe":
            # a plaintext body under a validly signed query string (a replay with a forged body)
            query = wechat.query()
            assert app.client.post("/webhooks/wechat", params=query, content=good.encode()).status_code == 403
            # ciphertext signed with the wrong token
            sealed = xmltodict.parse(WeChatCrypto("wrong", AES_KEY, APP_ID).encrypt_message(good, "n1", "1"))["xml"]
            query = {**wechat.query(), "encrypt_type": "aes", "msg_signature": sealed["MsgSignature"]}
            body = f"<xml><Encrypt><![CDATA[{sealed['Encrypt']}]]></Encrypt></xml>"
            assert app.client.post("/webhooks/wechat", params=query, content=body.encode()).status_code == 403
        # nothing was processed
        assert app.conversation() is None


def test_parse_xml_refuses_entities_before_parsing() -> None:
    with pytest.raises(BadRequest):
        parse_xml(BILLION_LAUGHS)
    with pytest.raises(BadRequest):
        parse_xml("<!doctype xml><xml/>")
    # a customer may type anything: markup inside CDATA is text, not a declaration
    assert parse_xml("<xml><A><![CDATA[<!DOCTYPE html> is what I see]]></A></xml>") == {
        "A": "<!DOCTYPE html> is what I see"}


# --- conversations ------------------------------------------------------------------------------------

@pytest.mark.parametrize("mode", ["plain", "compatible", "safe"])
def test_faq_question_gets_a_passive_answer(make_app: Callable[..., Any], standin: StandIn, mode: str) -> None:
    with make_app(mode) as app:
        started = time.monotonic()
        answer = app.wechat.say(text_xml("怎么退货", 6001))
        assert time.monotonic() - started < 4.0  # well inside WeChat's 5 seconds
        assert answer is not None and "退" in answer
        conv = app.conversation()
        assert conv is not None and conv.transcript[0].text == "怎么退货"
        assert conv.transcript[1].text == answer
        assert standin.custom_sent == []  # the answer went back in the response, not as a 客服消息


def test_complaint_is_apologised_for_and_handed_off(make_app: Callable[..., Any]) -> None:
    with make_app("safe") as app:
        answer = app.wechat.say(text_xml("我要投诉你们，太差劲了", 6101))
        assert answer is not None and COMPLAINT_APOLOGY in answer and "人工客服" in answer
        conv = app.conversation()
        assert conv is not None and conv.state.value == "waiting"


def test_retried_message_yields_one_turn_and_one_answer(make_app: Callable[..., Any], standin: StandIn) -> None:
    with make_app("safe") as app:
        xml = text_xml("怎么退货", 6201)
        first = app.wechat.say(xml)
        retry = app.wechat.say(xml)  # WeChat did not get the first response in time and retries
        # The retry repeats the very same answer (WeChat discarded the first), never a new turn.
        assert first is not None and retry == first
        conv = app.conversation()
        assert conv is not None and [line.text for line in conv.transcript] == ["怎么退货", first]
        assert standin.custom_sent == []


def test_retry_on_another_worker_does_not_answer_twice(make_app: Callable[..., Any], standin: StandIn) -> None:
    with make_app("safe") as one, make_app("safe") as two:
        xml = text_xml("怎么退货", 6301)
        first = one.wechat.say(xml)
        retry = two.wechat.say(xml)
        assert retry == first
        conv = one.conversation()
        assert conv is not None and len(conv.transcript) == 2


def test_slow_turn_answers_success_then_a_customer_service_message(make_app: Callable[..., Any],
                                                                      standin: StandIn) -> None:
    with make_app("safe", slow=0.6, passive_reply_seconds=0.05) as app:
        xml = text_xml("怎么退货", 6401)
        assert app.wechat.say(xml) is None  # "success" at once: the answer comes later
        wait_for(lambda: len(standin.custom_sent) == 1)
        sent = standin.custom_sent[0]
        assert sent["touser"] == OPENID and sent["msgtype"] == "text" and "退" in sent["text"]["content"]
        assert app.wechat.say(xml) is None  # a retry neither re-runs the turn nor re-sends
        time.sleep(0.8)
        assert len(standin.custom_sent) == 1
        conv = app.conversation()
        assert conv is not None and [line.role.value for line in conv.transcript] == ["customer", "bot"]


def test_image_is_kept_for_the_agent_and_acknowledged(make_app: Callable[..., Any]) -> None:
    with make_app("safe") as app:
        answer = app.wechat.say(image_xml(6501))
        assert answer is not None and "已收到" in answer
        conv = app.conversation()
        assert conv is not None
        assert conv.transcript[0].meta["attachments"] == [
            {"kind": "image", "ref": "media-broken-parcel", "name": "http://mmbiz.qpic.cn/broken-parcel.jpg"}]


def test_subscribe_gets_a_welcome_and_unsubscribe_nothing(make_app: Callable[..., Any]) -> None:
    with make_app("safe") as app:
        created = int(time.time())
        welcome = app.wechat.say(event_xml("subscribe", created))
        assert welcome is not None and "感谢关注" in welcome and "转人工" in welcome
        assert app.wechat.say(event_xml("subscribe", created)) is None  # a retried event: no second welcome
        assert app.wechat.say(event_xml("unsubscribe", created + 1)) is None


def test_tapping_a_menu_option_answers_that_question(make_app: Callable[..., Any]) -> None:
    with make_app("safe") as app:
        conv = Conversation("wechat:" + OPENID, "wechat", OPENID, OPENID,
                            pending_suggestions=("return-policy", "refund-time"))
        app.call(app.state.runtime.store.save_conversation, conv)  # the bot has just offered a msgmenu
        tapped = text_xml("退款多久到账", 6801).replace(
            "</MsgId>", "</MsgId><bizmsgmenuid><![CDATA[refund-time]]></bizmsgmenuid>")
        answer = app.wechat.say(tapped)
        kb = app.state.runtime.knowledge.kb
        assert answer == kb.get("refund-time").answer_in("zh")
        conv = app.conversation()
        assert conv is not None and conv.transcript[0].text == "2"  # the choice, as if typed


def test_a_tapped_menu_item_is_a_typed_choice_with_its_label() -> None:
    msg = menu_pick(InboundMessage("wechat", OPENID, OPENID, "退款多久到账", "6801"), "refund-time")
    assert msg.choice == Choice("refund-time", "退款多久到账") and msg.text == "退款多久到账"
    assert msg.choice.said(("return-policy", "refund-time")) == "2"  # read in the conversation's language


def test_tapping_a_stale_menu_option_reads_its_label(make_app: Callable[..., Any]) -> None:
    with make_app("safe") as app:
        tapped = text_xml("退款多久到账", 6802).replace(
            "</MsgId>", "</MsgId><bizmsgmenuid><![CDATA[refund-time]]></bizmsgmenuid>")
        answer = app.wechat.say(tapped)  # nothing is on offer: the words on the item are the question
        assert answer == app.state.runtime.knowledge.kb.get("refund-time").answer_in("zh")
        conv = app.conversation()
        assert conv is not None and conv.transcript[0].text == "退款多久到账"


def test_voice_uses_wechat_speech_recognition(make_app: Callable[..., Any]) -> None:
    with make_app("safe") as app:
        voice = (f"<xml><ToUserName><![CDATA[{ACCOUNT}]]></ToUserName><FromUserName><![CDATA[{OPENID}]]>"
                 f"</FromUserName><CreateTime>{int(time.time())}</CreateTime><MsgType><![CDATA[voice]]></MsgType>"
                 "<MediaId><![CDATA[media-voice-1]]></MediaId><Format><![CDATA[amr]]></Format>"
                 "<Recognition><![CDATA[我要投诉你们，太差劲了]]></Recognition><MsgId>6901</MsgId></xml>")
        answer = app.wechat.say(voice)
        assert answer is not None and COMPLAINT_APOLOGY in answer
        conv = app.conversation()
        assert conv is not None and conv.transcript[0].meta["attachments"][0]["ref"] == "media-voice-1"


# --- customer-service messages: window, quota, outbox ---------------------------------------------------

def test_agent_messages_respect_quota_and_wait_for_the_customer(make_app: Callable[..., Any],
                                                                 standin: StandIn) -> None:
    with make_app("safe") as app:
        app.wechat.say(text_xml("你好", 6601))
        conv = app.conversation()
        assert conv is not None
        replies = [Reply(f"客服回复 {n}") for n in range(1, 7)]
        with pytest.raises(DeliveryDeferred) as deferred:
            app.call(app.channel.deliver, conv, replies)
        assert deferred.value.reason == "quota_used" and deferred.value.queued == 1
        assert [m["text"]["content"] for m in standin.custom_sent] == [f"客服回复 {n}" for n in range(1, 6)]
        assert app.call(app.state.runtime.store.redis.llen, keys.outbox(conv.id)) == 1

        app.wechat.say(text_xml("还在吗", 6602))  # the customer writes again: the queue goes out
        wait_for(lambda: len(standin.custom_sent) == 6)
        assert standin.custom_sent[-1]["text"]["content"] == "客服回复 6"
        assert app.call(app.state.runtime.store.redis.llen, keys.outbox(conv.id)) == 0


def test_platform_quota_error_and_closed_window_queue_the_message(make_app: Callable[..., Any],
                                                                  standin: StandIn) -> None:
    with make_app("safe") as app:
        app.wechat.say(text_xml("你好", 6701))
        conv = app.conversation()
        assert conv is not None
        standin.fail_next = [45047]  # 客服接口下行条数超过上限
        with pytest.raises(DeliveryDeferred) as deferred:
            app.call(app.channel.deliver, conv, [Reply("您的退款已处理")])
        assert deferred.value.reason == "quota_used"
        assert standin.custom_sent == []

        # 49 hours later: the 48-hour window is shut, nothing is even attempted
        app.call(app.state.runtime.store.redis.hset, keys.customer("wechat", OPENID), "window_last_in",
                 str(time.time() - 49 * 3600))
        with pytest.raises(DeliveryDeferred) as deferred:
            app.call(app.channel.deliver, conv, [Reply("请问还有其他问题吗")])
        assert deferred.value.reason == "window_closed"
        assert app.call(app.state.runtime.store.redis.llen, keys.outbox(conv.id)) == 2

        app.wechat.say(text_xml("我回来了", 6702))
        wait_for(lambda: len(standin.custom_sent) == 2)
        assert [m["text"]["content"] for m in standin.custom_sent] == ["您的退款已处理", "请问还有其他问题吗"]


def test_wechat_api_down_for_a_while_then_queued_messages_go_out_by_themselves(
        make_app: Callable[..., Any], standin: StandIn) -> None:
    """The customer-service API answers 502: an agent's messages are queued and retried until
    WeChat takes them, without waiting for the customer to write again."""
    with make_app("safe") as app:
        app.wechat.say(text_xml("你好", 6801))
        conv = app.conversation()
        assert conv is not None
        standin.sends_down_until = time.monotonic() + 4
        with pytest.raises(DeliveryDeferred, match="retried by itself") as deferred:
            app.call(app.channel.deliver, conv, [Reply("您的退款已处理")])
        assert deferred.value.reason == "api_error:-1"
        with pytest.raises(DeliveryDeferred):
            app.call(app.channel.deliver, conv, [Reply("请问还有其他问题吗")])
        assert standin.custom_sent == []
        wait_for(lambda: len(standin.custom_sent) == 2, timeout=30)
        assert [m["text"]["content"] for m in standin.custom_sent] == ["您的退款已处理", "请问还有其他问题吗"]
        time.sleep(0.5)
        assert len(standin.custom_sent) == 2  # each once


def test_clarify_suggestions_render_as_a_menu_or_numbered_text() -> None:
    reply = Reply("您是想问以下哪个问题？回复序号或点击选项即可：\n1. 退货流程\n2. 退款时效",
                  (Suggestion("退货流程", "returns"), Suggestion("退款时效", "refund-time")))
    menu = custom_message(OPENID, reply)
    assert menu["msgtype"] == "msgmenu"
    assert menu["msgmenu"]["head_content"] == "您是想问以下哪个问题？回复序号或点击选项即可："
    assert menu["msgmenu"]["list"] == [{"id": "returns", "content": "退货流程"},
                                       {"id": "refund-time", "content": "退款时效"}]
    assert passive_text([reply]) == reply.text  # passive replies cannot carry menus: numbered lines stay


# --- access token -------------------------------------------------------------------------------------------

class NoTurns:
    async def handle(self, msg: InboundMessage) -> TurnResult:
        raise AssertionError("no turns in this test")


async def test_access_token_is_fetched_once_per_expiry_across_workers(redis_client: aioredis.Redis) -> None:
    with serve() as standin:
        standin.expires_in = 2  # treated as expired 0.4 s early
        cfg = WeChatConfig(enabled=True, token=TOKEN, app_id=APP_ID, app_secret="secret",
                           encoding_aes_key=AES_KEY, api_base_url=standin.base_url)
        async with httpx.AsyncClient() as h1, httpx.AsyncClient() as h2:
            workers = [WeChatChannel(cfg, NoTurns(), Store(redis_client, StoreConfig()), http)
                       for http in (h1, h2)]
            users = [f"oUser{n:03d}" for n in range(40)]
            for user in users:
                await workers[0].outbox.customer_wrote(user)

            async def burst(tag: str) -> None:  # each worker sends to its own 20 customers at once
                await asyncio.gather(*(
                    workers[n % 2].deliver(Conversation(f"wechat:{u}", "wechat", u, u), [Reply(f"{tag} {u}")])
                    for n, u in enumerate(users)))

            await burst("first")
            assert len(standin.token_fetches) == 1 and len(standin.custom_sent) == 40
            await asyncio.sleep(1.7)
            for user in users:
                await workers[0].outbox.customer_wrote(user)
            await burst("second")
            assert len(standin.token_fetches) == 2 and len(standin.custom_sent) == 80


# --- bad input: fuzzed callbacks ------------------------------------------------------------------------

_TAGS = ["ToUserName", "FromUserName", "CreateTime", "MsgType", "Content", "MsgId", "Event", "EventKey", "PicUrl",
         "MediaId", "Recognition", "Location_X", "Label", "Url", "bizmsgmenuid", "Encrypt"]
_values = st.one_of(st.text(max_size=80), st.sampled_from(["text", "image", "voice", "event", "subscribe", "CLICK",
                                                          "location", "link", "", "-1", "99999999999999999999"]),
                    st.integers().map(str))


@st.composite
def _callbacks(draw: st.DrawFn) -> bytes:
    """WeChat-shaped XML with odd fields and values, broken markup, or arbitrary bytes."""
    kind = draw(st.sampled_from(["fields", "fields", "text", "bytes"]))
    if kind == "bytes":
        return draw(st.binary(max_size=400))
    if kind == "text":
        return draw(st.text(max_size=400)).encode("utf-8", "surrogatepass")
    fields = draw(st.dictionaries(st.sampled_from(_TAGS) | st.from_regex(r"[A-Za-z_]{1,12}", fullmatch=True),
                                  _values, max_size=8))
    cdata = draw(st.booleans())
    inner = "".join(f"<{k}><![CDATA[{v}]]></{k}>" if cdata else f"<{k}>{v}</{k}>" for k, v in fields.items())
    return f"<xml>{inner}</xml>".encode("utf-8", "surrogatepass")


@pytest.mark.parametrize("backend", ["memory"], indirect=True)
def test_fuzzed_callbacks_get_4xx_or_200_never_500(make_app: Callable[..., Any]) -> None:
    with make_app(mode="plain") as app:

        @settings(max_examples=300, deadline=None, database=None, derandomize=True)
        @given(body=_callbacks())
        def post(body: bytes) -> None:
            r = app.client.post("/webhooks/wechat", params=app.wechat.query(), content=body)
            assert r.status_code < 500, (body, r.status_code, r.text)

        post()
        assert app.wechat.say(text_xml("怎么退货", 990001))  # and the channel still answers


@pytest.mark.parametrize("backend", ["memory"], indirect=True)
def test_secrets_and_tokens_never_reach_the_log(make_app: Callable[..., Any], standin: StandIn,
                                                caplog: pytest.LogCaptureFixture) -> None:
    """With Kefu's log set-up (``kefu serve`` installs it), even at DEBUG and with libraries
    logging request URLs."""
    app_secret = "AppSecret-4f9c2e7d1b"
    factory = logging.getLogRecordFactory()
    mask_logs()
    try:
        with caplog.at_level(logging.DEBUG), \
                make_app("safe", slow=0.3, passive_reply_seconds=0.05, app_secret=app_secret) as app:
            assert app.wechat.say(text_xml("怎么退货", 7701)) is None  # late answer: fetches an access token
            wait_for(lambda: len(standin.custom_sent) == 1)
            forged = app.wechat.query()
            forged["signature"] = "0" * 40
            assert app.client.post("/webhooks/wechat", params=forged, content=b"<xml/>").status_code == 403
    finally:
        logging.setLogRecordFactory(factory)
    assert standin.valid_tokens, "the late answer went out with a fetched access token"
    logged = caplog.text
    assert "signature" in logged  # the refusal was logged ...
    for secret in (app_secret, TOKEN, AES_KEY, *standin.valid_tokens):  # ... and no secret was
        assert secret not in logged
