"""The web chat API and page, through the real ASGI app (lifespan, routes, error handling)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from bot.app import compose, create_app
from bot.config import ChannelsConfig, Config, IntentsConfig, ServerConfig, WebChannelConfig
from bot.static_assets import content_security_policy
from bot.types import Conversation
from tests.loop import portal

SHOP = "https://shop.example.com"


@pytest.fixture
def client(memory_config: Config) -> Iterator[TestClient]:
    config = Config(server=ServerConfig(max_body_bytes=10_000), store=memory_config.store,
                    knowledge=memory_config.knowledge, intents=IntentsConfig(embeddings=False),
                    channels=ChannelsConfig(web=WebChannelConfig(allowed_origins=(SHOP,))))
    with TestClient(create_app(config)) as c:
        yield c


def visitor(client: TestClient) -> str:
    r = client.post("/api/chat/visitor", json={})
    assert r.status_code == 200 and r.json()["new"] is True
    return str(r.json()["token"])


def test_page_and_health(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200 and "Kefu" in page.text and '<script src="/chat/chat.js">' in page.text
    assert "<style" not in page.text and "<script>" not in page.text  # CSP-ready: code in static files
    # the strict policy (bot/server.py), framed only by Kefu and the allowed origins (the widget)
    assert page.headers["content-security-policy"] == content_security_policy(f"'self' {SHOP}")
    assert "x-frame-options" not in page.headers  # frame-ancestors decides
    script = client.get("/chat/chat.js")  # the page's code is a static file (strict CSP: no inline script)
    assert script.status_code == 200 and "/api/chat/messages" in script.text
    assert script.headers["content-type"].startswith("text/javascript")
    assert client.get("/widget.js").headers["content-type"].startswith("text/javascript")
    assert client.get("/chat/secret.py").status_code == 404
    assert client.get("/chat/../server.py").status_code == 404 and client.get("/chat/x.js").status_code == 404
    assert client.get("/chat/widget.js").status_code == 404  # one place for each file
    health = client.get("/healthz").json()
    assert health["status"] == "ok" and health["store"] == "memory" and health["knowledge_entries"] >= 30
    assert health["channels"] == ["web"]


def test_chat_answers_return_question(client: TestClient) -> None:
    r = client.post("/api/chat", json={"session": "browser-0001", "text": "怎么退货"})
    assert r.status_code == 200
    data = r.json()
    assert data["decision"]["action"] == "answer"
    assert "退" in data["replies"][0]["text"]
    assert data["state"] == "bot"


def test_a_pressed_suggestion_is_a_typed_choice_answered_in_the_customers_language(client: TestClient) -> None:
    runtime = client.app.app.state.runtime  # type: ignore[attr-defined]
    offered = Conversation("web:browser-0009", "web", "browser-0009", "browser-0009",
                           pending_suggestions=("return-policy", "refund-time"))
    portal(client).call(runtime.store.save_conversation, offered)  # a clarify was shown
    data = client.post("/api/chat", json={"session": "browser-0009", "text": "退款多久到账",
                                          "choice": "refund-time"}).json()
    assert (data["decision"]["entry_id"], data["decision"]["reason"]) == ("refund-time", "clarify_choice")
    assert data["replies"][0]["text"] == runtime.knowledge.kb.get("refund-time").answer_in("zh")
    assert data["language"] == "zh"  # the entry id is not read as English words
    stored = portal(client).call(runtime.store.load_conversation, "web:browser-0009")
    assert stored.transcript[-2].text == "2"  # recorded as if typed, as on every channel
    bad = client.post("/api/chat", json={"session": "browser-0009", "text": "x", "choice": ["refund-time"]})
    assert bad.status_code == 400 and "'choice'" in bad.json()["error"]


def test_complaint_hands_off(client: TestClient) -> None:
    data = client.post("/api/chat", json={"session": "browser-0002", "text": "我要投诉你们，太差劲了"}).json()
    assert data["decision"]["action"] == "handoff"
    assert data["handoff"]["reason"] == "complaint"
    assert data["state"] == "waiting"
    assert "人工客服" in data["replies"][0]["text"]
    follow = client.get("/api/chat/browser-0002/messages", params={"after": 0}).json()
    assert follow["state"] == "waiting"


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"session": "x", "text": "hi"}, 400, "session"),
        ({"session": "v_" + "1" * 32, "text": "hi"}, 400, "visitor token"),
        ({"token": "v_" + "1" * 32 + "." + "x" * 43, "text": "hi"}, 401, "visitor token"),
        ({"session": "browser-0003"}, 400, "text"),
        ({"session": "browser-0003", "text": "   "}, 400, "text"),
        ({"session": "browser-0003", "text": "a" * 2001}, 413, "longer than"),
        (["not", "an", "object"], 400, "JSON object"),
    ],
)
def test_bad_requests_are_clear_4xx(client: TestClient, body: object, status: int, message: str) -> None:
    r = client.post("/api/chat", json=body)
    assert r.status_code == status
    assert message in r.json()["error"]


def test_garbage_and_oversized_bodies(client: TestClient) -> None:
    r = client.post("/api/chat", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 400
    r = client.post("/api/chat", content=b"x" * 20_000, headers={"content-type": "application/json"})
    assert r.status_code == 413


def test_a_visitor_token_restores_the_whole_conversation_in_order(client: TestClient) -> None:
    token = visitor(client)
    assert client.post("/api/chat/visitor", json={"token": token}).json() == {"token": token, "new": False}
    for n, text in enumerate(["怎么退货", "How do I return an item?", "我要投诉你们，太差劲了", "订单号 12345"]):
        r = client.post("/api/chat", json={"token": token, "text": text, "message_id": f"m-{n}"})
        assert r.status_code == 200, r.text
    seen = client.get("/api/chat/messages", headers={"X-Kefu-Visitor": token}).json()
    lines = seen["messages"]
    assert [m["seq"] for m in lines] == list(range(1, len(lines) + 1))  # every line once, numbered in order
    assert [m["text"] for m in lines if m["role"] == "customer"] == [
        "怎么退货", "How do I return an item?", "我要投诉你们，太差劲了", "订单号 12345"]
    assert [m["message_id"] for m in lines if m["role"] == "customer"] == ["m-0", "m-1", "m-2", "m-3"]
    assert lines[1]["role"] == "bot" and lines[1]["rateable"] is True  # an answer: thumbs up/down
    assert seen["state"] == "waiting" and seen["last"] == lines[-1]["seq"]
    later = client.get("/api/chat/messages", params={"after": seen["last"] - 1},
                       headers={"X-Kefu-Visitor": token}).json()
    assert [m["seq"] for m in later["messages"]] == [seen["last"]]  # "everything after N", no clock
    assert client.get("/api/chat/messages", params={"after": seen["last"], "wait": 0.3},
                      headers={"X-Kefu-Visitor": token}).json()["messages"] == []  # long poll: nothing new
    restarted = client.get("/api/chat/messages", params={"after": 999}, headers={"X-Kefu-Visitor": token}).json()
    assert restarted["last"] < 999 and len(restarted["messages"]) == len(lines)  # a stale cursor starts over


@pytest.mark.parametrize("token", ["v_" + "0" * 32 + "." + "A" * 43, "v_" + "0" * 32, "", None])
def test_a_forged_or_guessed_identity_is_refused(client: TestClient, token: object) -> None:
    real = visitor(client)
    client.post("/api/chat", json={"token": real, "text": "我的订单号 12345"})
    guessed = real.split(".")[0]  # the visitor id alone, as it appears in the agent console
    for value in (token, guessed):
        r = client.post("/api/chat", json={"token": value, "text": "hi"})
        assert r.status_code in (400, 401) and "visitor token" in r.json()["error"]
        r = client.get("/api/chat/messages", headers={"X-Kefu-Visitor": value or ""})
        assert r.status_code in (400, 401)
        r = client.get(f"/api/chat/{guessed}/messages")
        assert r.status_code in (400, 401)
    tampered = real[:-1] + ("A" if real[-1] != "A" else "B")
    assert client.post("/api/chat", json={"token": tampered, "text": "hi"}).status_code == 401


def test_only_allowed_sites_may_use_the_chat_api(client: TestClient) -> None:
    token = visitor(client)
    evil = client.post("/api/chat", json={"token": token, "text": "怎么退货"}, headers={"Origin": "https://evil.example"})
    assert evil.status_code == 403 and "allowed_origins" in evil.json()["error"]
    assert "access-control-allow-origin" not in evil.headers
    assert client.post("/api/chat/visitor", json={}, headers={"Origin": "https://evil.example"}).status_code == 403
    shop = client.post("/api/chat", json={"token": token, "text": "怎么退货"}, headers={"Origin": SHOP})
    assert shop.status_code == 200 and shop.headers["access-control-allow-origin"] == SHOP
    preflight = client.options("/api/chat", headers={"Origin": SHOP, "Access-Control-Request-Method": "POST",
                                                     "Access-Control-Request-Headers": "content-type"})
    assert preflight.status_code == 200 and preflight.headers["access-control-allow-origin"] == SHOP
    refused = client.options("/api/chat", headers={"Origin": "https://evil.example",
                                                   "Access-Control-Request-Method": "POST"})
    assert refused.status_code == 400
    own = client.post("/api/chat", json={"token": token, "text": "怎么退货"}, headers={"Origin": "http://testserver"})
    assert own.status_code == 200  # the page (or the widget's frame) on Kefu's own origin
    assert "access-control-allow-origin" not in client.get("/api/agent/inbox", headers={"Origin": SHOP}).headers


def test_thumbs_rate_the_chosen_answer(client: TestClient) -> None:
    token = visitor(client)
    client.post("/api/chat", json={"token": token, "text": "怎么退货"})
    client.post("/api/chat", json={"token": token, "text": "How do I return an item?"})
    answers = [m for m in client.get("/api/chat/messages", headers={"X-Kefu-Visitor": token}).json()["messages"]
               if m.get("rateable")]
    assert len(answers) == 2
    first = client.post("/api/feedback", json={"token": token, "seq": answers[0]["seq"], "helpful": False})
    assert first.json() == {"recorded": True}
    assert client.post("/api/feedback", json={"token": token, "seq": answers[0]["seq"], "helpful": False}).json() == {
        "recorded": False}  # one vote per answer
    assert client.post("/api/feedback", json={"token": token, "seq": answers[1]["seq"], "helpful": True}).json() == {
        "recorded": True}  # the other answer is its own vote
    bad = client.post("/api/feedback", json={"token": token, "seq": "x", "helpful": True})
    assert bad.status_code == 400 and "seq" in bad.json()["error"]


PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def test_a_picture_is_kept_for_the_agent_within_size_and_type_limits(client: TestClient) -> None:
    token = visitor(client)
    up = client.post("/api/chat/attachments", content=PNG,
                     headers={"X-Kefu-Visitor": token, "Content-Type": "image/png", "X-File-Name": "%E5%8F%91%E7%A5%A8.png"})
    assert up.status_code == 201 and up.json()["name"] == "发票.png" and up.json()["size"] == len(PNG)
    ref = up.json()["ref"]
    sent = client.post("/api/chat", json={"token": token, "attachments": [{"ref": ref}]})
    assert sent.status_code == 200 and sent.json()["decision"]["action"] == "smalltalk"
    assert "人工客服也能看到" in sent.json()["replies"][0]["text"]  # kept; please describe the problem
    line = client.get("/api/chat/messages", headers={"X-Kefu-Visitor": token}).json()["messages"][0]
    assert line["role"] == "customer" and line["attachments"] == [{"kind": "photo", "name": "发票.png"}]
    file = client.get(f"/api/chat/attachments/{ref}")
    assert file.content == PNG and file.headers["content-type"] == "image/png"
    assert file.headers["x-content-type-options"] == "nosniff" and "sandbox" in file.headers["content-security-policy"]

    html = client.post("/api/chat/attachments", content=b"<script>alert(1)</script>",
                       headers={"X-Kefu-Visitor": token, "Content-Type": "text/html"})
    assert html.status_code == 415 and "image/png" in html.json()["error"]
    big = client.post("/api/chat/attachments", content=b"x" * 2_000_001,
                      headers={"X-Kefu-Visitor": token, "Content-Type": "text/plain"})
    assert big.status_code == 413 and "larger than" in big.json()["error"]
    someone_else = visitor(client)
    stolen = client.post("/api/chat", json={"token": someone_else, "attachments": [{"ref": ref}]})
    assert stolen.status_code == 404 and "attachment" in stolen.json()["error"]
    assert client.post("/api/chat", json={"token": token, "attachments": [{"ref": "../../etc"}]}).status_code == 404
    assert client.post("/api/chat", json={"token": token, "attachments": "x"}).status_code == 400
    assert client.get("/api/chat/attachments/" + "0" * 32).status_code == 404
    assert client.post("/api/chat/attachments", content=PNG, headers={"Content-Type": "image/png"}).status_code in (400, 401)


@pytest.mark.parametrize("query", [{"after": "-1"}, {"after": "abc"}, {"after": "1.5"}, {"wait": "1e309"},
                                   {"wait": "nan"}, {"after": "9" * 400}])
def test_bad_poll_parameters_are_one_clear_400(client: TestClient, query: dict[str, str]) -> None:
    token = visitor(client)
    r = client.get("/api/chat/messages", params=query, headers={"X-Kefu-Visitor": token})
    assert r.status_code == 400 and ("'after'" in r.json()["error"] or "'wait'" in r.json()["error"])


def signed(secret: str, claims: dict[str, object]) -> str:
    """What the website's backend computes for the widget's data-customer attribute."""
    payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
    signature = base64.urlsafe_b64encode(hmac.new(secret.encode(), payload.encode(), hashlib.sha256).digest())
    return f"{payload}.{signature.decode().rstrip('=')}"


def test_a_customer_the_site_signed_is_known_to_the_agent_on_every_device(memory_config: Config) -> None:
    config = Config(store=memory_config.store, knowledge=memory_config.knowledge,
                    intents=IntentsConfig(embeddings=False),
                    channels=ChannelsConfig(web=WebChannelConfig(identity_secret="site-secret")))
    kefu = compose(config)
    runtimes = [kefu.runtime]
    with TestClient(kefu.asgi) as client:
        claims = {"id": "u-1001", "name": "王女士", "exp": time.time() + 600}
        phone = client.post("/api/chat/visitor", json={"customer": signed("site-secret", claims)}).json()
        laptop = client.post("/api/chat/visitor", json={"customer": signed("site-secret", claims), "token": visitor(client)})
        assert laptop.json()["token"] == phone["token"] and phone["name"] == "王女士"  # one customer, one record
        client.post("/api/chat", json={"token": phone["token"], "text": "转人工"})
        conv = asyncio.run(runtimes[0].store.load_conversation("web:" + phone["token"].split(".")[0]))
        assert conv is not None and conv.profile.name == "王女士"  # the agent sees who it is
        for bad, status, words in [
            (signed("wrong-secret", claims), 401, "not signed"),
            (signed("site-secret", {**claims, "exp": time.time() - 1}), 401, "expired"),
            (signed("site-secret", {"name": "x", "exp": time.time() + 60}), 400, "'id'"),
            ("garbage", 401, "not signed"),
        ]:
            r = client.post("/api/chat/visitor", json={"customer": bad})
            assert r.status_code == status and words in r.json()["error"], r.text
