"""Requests an attacker can send without logging in, and an admin's odd query strings: each
gets one clear 4xx, never a 500, and leaves no traceback in the log."""

from __future__ import annotations

import dataclasses
import json
import logging

import pytest
from starlette.testclient import TestClient

from bot.app import create_app
from bot.channels.wechat_common import parse_xml
from bot.config import Config, StoreConfig
from bot.errors import BadRequest
from tests.bot.conftest import RedisProcess
from tests.bot.security.conftest import Served

NESTED = b'{"session": "attacker-0001", "text": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
DEEP = b"[" * 50 + b"]" * 50


def no_traceback(caplog: pytest.LogCaptureFixture) -> None:
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]


@pytest.mark.parametrize("path", ["/api/chat", "/api/agent/login", "/api/feedback"])
@pytest.mark.parametrize("body", [NESTED, DEEP], ids=["recursion", "too-deep"])
def test_deeply_nested_json_is_400(served: Served, caplog: pytest.LogCaptureFixture, path: str, body: bytes) -> None:
    r = served.client.post(path, content=body, headers={"content-type": "application/json"})
    assert r.status_code == 400 and "nested" in r.json()["error"]
    no_traceback(caplog)


@pytest.mark.parametrize("field", ["text", "name", "message_id", "session"])
def test_lone_surrogates_are_400(served: Served, caplog: pytest.LogCaptureFixture, field: str) -> None:
    body = {"session": "attacker-0002", "text": "怎么退货", "name": "x", "message_id": "m-1"}
    raw = body | {field: "a\ud800b"}
    r = served.client.post("/api/chat", content=json.dumps(raw), headers={"content-type": "application/json"})
    assert r.status_code == 400 and "surrogate" in r.json()["error"]
    login = served.client.post("/api/agent/login", content='{"name": "\\udfff", "password": "x"}',
                               headers={"content-type": "application/json"})
    assert login.status_code == 400
    no_traceback(caplog)


@pytest.mark.parametrize(("period", "status"), [("中", 400), ("7d\r\nSet-Cookie: x=1", 400), ("²", 400),
                                                ("99999999999", 400), ("30d", 200), ("14", 200)])
def test_dashboard_csv_period_is_checked(served: Served, caplog: pytest.LogCaptureFixture, period: str,
                                         status: int) -> None:
    headers = served.login()
    r = served.client.get("/api/admin/dashboard.csv", params={"period": period}, headers=headers)
    assert r.status_code == status, r.text
    if status == 400:
        assert "period" in r.json()["error"]
        assert "x=1" not in r.headers.get("set-cookie", "")
    json_report = served.client.get("/api/admin/dashboard", params={"period": period}, headers=headers)
    assert json_report.status_code == status
    no_traceback(caplog)


HEAD = "<ToUserName>gh_a</ToUserName><FromUserName>oAttacker</FromUserName>"


@pytest.mark.parametrize(("xml", "message"), [
    (("<xml>" + HEAD + "<CreateTime>1</CreateTime><MsgType>text</MsgType><Content>hi</Content></xml>")
     .encode("utf-16"), "UTF-8"),
    (f"<xml>{HEAD}<MsgType>text</MsgType><MsgType>event</MsgType></xml>".encode(), "more than once"),
    (f"<xml>{HEAD}<MsgType><a>text</a></MsgType></xml>".encode(), "child elements"),
    (f"<xml>{HEAD}<MsgType>text</MsgType><CreateTime>abc</CreateTime></xml>".encode(), "number"),
    (f"<xml>{HEAD}<MsgType>text</MsgType><CreateTime>{'9' * 400}</CreateTime></xml>".encode(), "number"),
    (f"<xml>{HEAD}<MsgType>event</MsgType><Event>CLICK</Event><Event>VIEW</Event></xml>".encode(), "more than once"),
    (f"<xml>{HEAD}<MsgType>event</MsgType><Event>CLICK</Event><EventKey><k>1</k></EventKey></xml>".encode(),
     "child elements"),
    (f"<xml>{HEAD}<MsgType>text</MsgType><MsgId><x>1</x></MsgId></xml>".encode(), "child elements"),
])
def test_wechat_fields_are_validated_before_wechatpy_or_redis(xml: bytes, message: str) -> None:
    with pytest.raises(BadRequest, match=message) as caught:
        parse_xml(xml)
    assert caught.value.status == 400
    fine = parse_xml(f"<xml>{HEAD}<CreateTime>1790000000</CreateTime><MsgType>text</MsgType>"
                     "<Content><![CDATA[<b>怎么退货</b>]]></Content><MsgId>24000000000000000001</MsgId></xml>")
    assert fine["Content"] == "<b>怎么退货</b>"


def test_logins_and_new_chats_while_redis_is_down_are_503(app_config: Config, private_redis: RedisProcess,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    config = dataclasses.replace(app_config, store=StoreConfig(url=private_redis.url))
    with TestClient(create_app(config)) as client:
        private_redis.stop()
        login = client.post("/api/agent/login", json={"name": "boss", "password": "x"})
        chat = client.post("/api/chat", json={"session": "new-customer-1", "text": "怎么退货"})
        assert login.status_code == 503 and chat.status_code == 503 and chat.json()["retry"] is True
    assert not [r for r in caplog.records if r.exc_info]
