"""The WeCom 微信客服 channel: encrypted callbacks → kf/sync_msg → kf/send_msg, as WeCom does it.

Callbacks are encrypted and signed with wechatpy's enterprise crypto; the feed, sends and the
service-state machine live on the stand-in API (tests/bot/channels/wechat_standin.py) on loopback.
"""

from __future__ import annotations

import base64
import dataclasses
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
import xmltodict
from starlette.testclient import TestClient
from wechatpy.enterprise.crypto import PrpCrypto, WeChatCrypto

from bot import keys
from bot.channels.wecom import kf_message
from bot.config import Config, StoreConfig, WeComConfig
from bot.types import Choice, Conversation, Decision, Reply, Suggestion
from tests.bot.channels.test_wechat import BILLION_LAUGHS, COMPLAINT_APOLOGY, sign
from tests.bot.channels.wechat_standin import Backend, StandIn, serve, wait_for
from tests.conftest import require_redis
from tests.loop import portal

TOKEN = "wecom-callback-token"
AES_KEY = base64.b64encode(b"fedcba9876543210fedcba9876543210").decode().rstrip("=")
CORP_ID = "ww0123456789abcdef"
KFID = "wkKefuTestAccount"
USER = "wmKefuCustomer01"


def kf_text(msgid: str, content: str, user: str = USER) -> dict[str, Any]:
    return {"msgid": msgid, "open_kfid": KFID, "external_userid": user, "send_time": int(time.time()),
            "origin": 3, "msgtype": "text", "text": {"content": content}}


class WeComServer:
    def __init__(self, client: TestClient) -> None:
        self.client = client
        self.crypto = WeChatCrypto(TOKEN, AES_KEY, CORP_ID)

    def callback(self, token: str = "ENCApHxnGDNAVNY4AaSJKj4Tb5mwsEMzxhFmHVGcra996NR",
                 timestamp: int | None = None, inner: str | None = None) -> httpx.Response:
        """The kf_msg_or_event notification WeCom posts when the customer wrote."""
        ts = str(timestamp or int(time.time()))
        xml = inner or (f"<xml><ToUserName><![CDATA[{CORP_ID}]]></ToUserName><CreateTime>{ts}</CreateTime>"
                        "<MsgType><![CDATA[event]]></MsgType><Event><![CDATA[kf_msg_or_event]]></Event>"
                        f"<Token><![CDATA[{token}]]></Token><OpenKfId><![CDATA[{KFID}]]></OpenKfId></xml>")
        sealed = xmltodict.parse(self.crypto.encrypt_message(xml, "nonce42", ts))["xml"]
        body = (f"<xml><ToUserName><![CDATA[{CORP_ID}]]></ToUserName><AgentID><![CDATA[]]></AgentID>"
                f"<Encrypt><![CDATA[{sealed['Encrypt']}]]></Encrypt></xml>")
        query = {"msg_signature": sealed["MsgSignature"], "timestamp": ts, "nonce": "nonce42"}
        response: httpx.Response = self.client.post("/webhooks/wecom", params=query, content=body.encode())
        return response


@dataclasses.dataclass
class App:
    client: TestClient
    wecom: WeComServer
    state: Any

    def redis_get(self, key: str) -> Any:
        return portal(self.client).call(self.state.runtime.store.redis.get, key)


class FlakyLayer:
    """The real intent layer, except that its first attempt at one text fails (a crash mid-sync)."""

    def __init__(self, inner: Any, fail_text: str) -> None:
        self.inner = inner
        self.fail_text = fail_text
        self.failed = False

    def is_quick(self, text: str, conversation: Conversation) -> bool:
        return False

    def decide(self, text: str, conversation: Conversation, choice: Choice | None = None) -> Decision:
        if text == self.fail_text and not self.failed:
            self.failed = True
            raise RuntimeError("worker crashed mid-sync")
        decision: Decision = self.inner.decide(text, conversation, choice)
        return decision


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


@pytest.fixture
def make_app(config: Config, backend: Backend, standin: StandIn) -> Iterator[Callable[..., Any]]:
    @contextmanager
    def make(fail_text: str = "") -> Iterator[App]:
        from bot.app import compose

        wecom = WeComConfig(enabled=True, corp_id=CORP_ID, secret="kf-secret", token=TOKEN,
                            encoding_aes_key=AES_KEY, open_kfid=KFID, api_base_url=standin.base_url)
        cfg = dataclasses.replace(config, store=StoreConfig(url="memory://"),
                                  channels=dataclasses.replace(config.channels, wecom=wecom))

        kefu = compose(cfg, redis=backend.client())
        with TestClient(kefu.asgi) as client:
            rt = kefu.runtime
            if fail_text:
                rt._knowledge = dataclasses.replace(rt._knowledge, layer=FlakyLayer(rt._knowledge.layer, fail_text))
            yield App(client, WeComServer(client), kefu.app.state)

    yield make


def test_callback_url_verification_decrypts_echostr(make_app: Callable[..., Any]) -> None:
    with make_app() as app:
        ts = str(int(time.time()))
        echostr = PrpCrypto(base64.b64decode(AES_KEY + "=")).encrypt("1616140317555161061", CORP_ID).decode()
        query = {"msg_signature": sign(TOKEN, ts, "nonce7", echostr), "timestamp": ts, "nonce": "nonce7",
                 "echostr": echostr}
        r = app.client.get("/webhooks/wecom", params=query)
        assert r.status_code == 200 and r.text == "1616140317555161061"
        forged = {**query, "msg_signature": sign("wrong-token", ts, "nonce7", echostr)}
        assert app.client.get("/webhooks/wecom", params=forged).status_code == 403


def test_forged_stale_and_hostile_callbacks_are_refused(make_app: Callable[..., Any], standin: StandIn) -> None:
    with make_app() as app:
        assert app.wecom.callback(timestamp=int(time.time()) - 900).status_code == 403
        assert app.wecom.callback(inner=BILLION_LAUGHS).status_code == 400
        body = b"<xml><Encrypt><![CDATA[AAAA]]></Encrypt></xml>"
        query = {"msg_signature": "0" * 40, "timestamp": str(int(time.time())), "nonce": "n"}
        assert app.client.post("/webhooks/wecom", params=query, content=body).status_code == 403
        assert app.client.post("/webhooks/wecom", params=query, content=b"garbage").status_code == 400
        time.sleep(0.2)
        assert standin.sync_calls == []


def test_callback_pulls_the_feed_and_answers(make_app: Callable[..., Any], standin: StandIn) -> None:
    standin.kf_messages.append(kf_text("msg-1", "怎么退货"))
    with make_app() as app:
        r = app.wecom.callback(token="callback-token-1")
        assert r.status_code == 200 and r.text == "success"
        wait_for(lambda: len(standin.kf_sent) == 1)
        sent = standin.kf_sent[0]
        assert sent["touser"] == USER and sent["open_kfid"] == KFID and "退" in sent["text"]["content"]
        assert standin.sync_calls[0] == {"cursor": "", "limit": 1000, "open_kfid": KFID, "token": "callback-token-1"}
        assert [c["service_state"] for c in standin.trans_calls] == [1]  # the bot took the new session
        wait_for(lambda: app.redis_get(keys.sync_cursor("wecom", KFID)) == "1")


def test_restart_resumes_at_the_saved_cursor_without_re_answering(make_app: Callable[..., Any],
                                                                   standin: StandIn) -> None:
    standin.kf_messages.append(kf_text("msg-1", "怎么退货"))
    with make_app() as app:
        app.wecom.callback()
        wait_for(lambda: len(standin.kf_sent) == 1)
        wait_for(lambda: app.redis_get(keys.sync_cursor("wecom", KFID)) == "1")
    standin.kf_messages.append(kf_text("msg-2", "你好"))
    with make_app() as restarted:  # a new process: new adapter, same Redis
        restarted.wecom.callback()
        wait_for(lambda: len(standin.kf_sent) == 2)
        assert standin.sync_calls[-1]["cursor"] == "1"
        time.sleep(0.3)
        assert len(standin.kf_sent) == 2
        assert standin.kf_sent[1]["text"]["content"] != standin.kf_sent[0]["text"]["content"]  # the greeting


def test_failed_message_is_read_again_and_nothing_is_answered_twice(make_app: Callable[..., Any],
                                                                    standin: StandIn) -> None:
    standin.kf_messages += [kf_text("msg-1", "怎么退货"), kf_text("msg-2", "运费怎么算")]
    with make_app(fail_text="运费怎么算") as app:
        app.wecom.callback()
        wait_for(lambda: len(standin.kf_sent) == 1)
        time.sleep(0.3)
        assert app.redis_get(keys.sync_cursor("wecom", KFID)) is None  # the page was not finished
        app.wecom.callback()
        wait_for(lambda: len(standin.kf_sent) == 2)
        assert standin.sync_calls[-1]["cursor"] == ""
        time.sleep(0.3)
        assert len(standin.kf_sent) == 2  # msg-1 was deduped, msg-2 answered once
        wait_for(lambda: app.redis_get(keys.sync_cursor("wecom", KFID)) == "2")


def test_complaint_hands_off_into_the_waiting_pool(make_app: Callable[..., Any], standin: StandIn) -> None:
    standin.kf_messages.append(kf_text("msg-9", "我要投诉你们，太差劲了"))
    with make_app() as app:
        app.wecom.callback()
        wait_for(lambda: standin.service_state.get(USER) == 2)
        assert COMPLAINT_APOLOGY in standin.kf_sent[0]["text"]["content"]
        assert [c["service_state"] for c in standin.trans_calls] == [2]


def test_bot_stays_out_while_a_wecom_servicer_is_receiving(make_app: Callable[..., Any],
                                                          standin: StandIn) -> None:
    standin.service_state[USER] = 3
    standin.kf_messages.append(kf_text("msg-3", "怎么退货"))
    with make_app() as app:
        app.wecom.callback()
        wait_for(lambda: app.redis_get(keys.sync_cursor("wecom", KFID)) == "1")
        assert standin.kf_sent == [] and standin.trans_calls == []


def test_entering_the_session_gets_a_welcome(make_app: Callable[..., Any], standin: StandIn) -> None:
    standin.kf_messages.append({"msgid": "evt-1", "send_time": int(time.time()), "origin": 4, "msgtype": "event",
                                "event": {"event_type": "enter_session", "open_kfid": KFID,
                                          "external_userid": USER, "welcome_code": "WELCOME-CODE"}})
    with make_app() as app:
        app.wecom.callback()
        wait_for(lambda: len(standin.kf_event_sent) == 1)
        assert standin.kf_event_sent[0]["code"] == "WELCOME-CODE"
        assert "转人工" in standin.kf_event_sent[0]["text"]["content"]


def test_clarify_suggestions_become_a_click_menu() -> None:
    reply = Reply("您是想问以下哪个问题？回复序号或点击选项即可：\n1. 退货流程\n2. 退款时效",
                  (Suggestion("退货流程", "returns"), Suggestion("退款时效", "refund-time")))
    body = kf_message(USER, KFID, reply)
    assert body["msgtype"] == "msgmenu"
    assert body["msgmenu"]["list"][0] == {"type": "click", "click": {"id": "returns", "content": "退货流程"}}
