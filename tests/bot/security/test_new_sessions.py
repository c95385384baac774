"""Flooding the human queue without logging in: scripted web sessions from one address, a first
message that demands a human, and a 2,000-character message for the model to encode."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient
from starlette.types import ASGIApp, Receive, Scope, Send

from bot.app import create_app
from bot.config import Config
from tests.bot.security.conftest import PASSWORD, wipe
from tests.loop import portal


def from_address(app: ASGIApp) -> ASGIApp:
    """Requests arrive from the address in ``X-Test-Address``, as from different networks."""

    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = dict(scope["headers"])
            scope = {**scope, "client": (headers.get(b"x-test-address", b"192.0.2.1").decode(), 40000)}
        await app(scope, receive, send)

    wrapped.app = app  # type: ignore[attr-defined]
    return wrapped


@pytest.fixture
def client(app_config: Config) -> Iterator[TestClient]:
    wipe()
    with TestClient(from_address(create_app(app_config))) as c:
        yield c
    wipe()


def chat(client: TestClient, session: str, text: str, address: str) -> tuple[int, dict[str, Any]]:
    r = client.post("/api/chat", json={"session": session, "text": text}, headers={"x-test-address": address})
    return r.status_code, r.json()


def test_sixty_scripted_sessions_from_one_address_open_ten_tickets(client: TestClient, app_config: Config) -> None:
    outcomes = [chat(client, f"bot-session-{i:03d}", "转人工", "203.0.113.66") for i in range(60)]
    statuses = [status for status, _ in outcomes]
    per_address = app_config.security.new_web_sessions_per_minute_per_address
    assert statuses.count(200) == per_address and statuses.count(429) == 60 - per_address
    refused = next(body for status, body in outcomes if status == 429)
    assert "一分钟后" in str(refused["error"]) and "wait a minute" in str(refused["error"])
    # an admitted session keeps talking; a real customer elsewhere is served
    assert chat(client, "bot-session-000", "在吗", "203.0.113.66")[0] == 200
    status, body = chat(client, "real-customer-1", "怎么退货", "198.51.100.8")
    assert status == 200 and body["replies"]
    login = client.post("/api/agent/login", json={"name": "li", "password": PASSWORD})
    queued = client.get("/api/agent/tickets", headers={"x-csrf-token": login.json()["csrf"]}).json()["queued"]
    assert len(queued) == per_address


def test_the_overall_limit_holds_across_addresses(app_config: Config) -> None:
    config = dataclasses.replace(app_config, security=dataclasses.replace(
        app_config.security, new_web_sessions_per_minute=25))
    wipe()
    with TestClient(from_address(create_app(config))) as c:
        statuses = [chat(c, f"spread-{i:03d}", "你好", f"10.0.{i}.1")[0] for i in range(40)]
    wipe()
    assert statuses.count(200) == 25 and statuses.count(429) == 15


def test_a_first_message_demanding_a_human_does_not_jump_the_queue(client: TestClient) -> None:
    assert chat(client, "known-customer", "怎么退货", "198.51.100.1")[0] == 200  # answered first
    assert chat(client, "known-customer", "你们太差劲了，我要投诉", "198.51.100.1")[1]["state"] == "waiting"
    assert chat(client, "drive-by-0001", "你们太差劲了，我要投诉", "198.51.100.2")[1]["state"] == "waiting"
    login = client.post("/api/agent/login", json={"name": "li", "password": PASSWORD})
    queued = client.get("/api/agent/tickets", headers={"x-csrf-token": login.json()["csrf"]}).json()["queued"]
    by_conversation = {t["conversation_id"]: t["priority"] for t in queued}
    assert by_conversation["web:known-customer"] < by_conversation["web:drive-by-0001"]


def test_the_model_reads_only_the_start_of_a_novel(client: TestClient, app_config: Config) -> None:
    novel = "怎么退货" * 75 + "天气不错我们去公园散步吧" * 150
    status, body = chat(client, "novelist-01", novel[:2000], "198.51.100.3")
    assert status == 200 and body["decision"]["action"] == "answer"  # decided on its first 300 characters
    runtime = client.app.app.app.state.runtime  # type: ignore[attr-defined]
    conv = portal(client).call(runtime.store.load_conversation, "web:novelist-01")
    assert conv.transcript[0].text == novel[:2000]  # the agent would see all of it
    assert app_config.security.max_classified_chars == 300


def test_visitor_tokens_count_as_new_chats_once(client: TestClient, app_config: Config) -> None:
    """The chat page and the widget first ask for a visitor token: that is where a new chat is
    counted (and refused), and its first message is not counted a second time."""
    per_address = app_config.security.new_web_sessions_per_minute_per_address
    where = {"x-test-address": "203.0.113.77"}
    answers = [client.post("/api/chat/visitor", json={}, headers=where) for _ in range(per_address + 5)]
    assert [r.status_code for r in answers].count(200) == per_address
    refused = [r for r in answers if r.status_code == 429]
    assert len(refused) == 5 and "一分钟后" in refused[0].json()["error"]
    tokens = [r.json()["token"] for r in answers if r.status_code == 200]
    for token in tokens:  # every admitted visitor may talk
        r = client.post("/api/chat", json={"token": token, "text": "怎么退货"}, headers=where)
        assert r.status_code == 200, r.text
    # a returning visitor keeps their token without counting; a new unsigned session is refused
    again = client.post("/api/chat/visitor", json={"token": tokens[0]}, headers=where)
    assert again.status_code == 200 and again.json() == {"token": tokens[0], "new": False}
    assert chat(client, "one-more-session", "你好", "203.0.113.77")[0] == 429
