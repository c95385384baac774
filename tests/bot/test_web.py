"""The web chat API and page, through the real ASGI app (lifespan, routes, error handling)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from bot.config import Config, ServerConfig
from bot.server import create_app


@pytest.fixture
def client(memory_config: Config) -> Iterator[TestClient]:
    config = Config(server=ServerConfig(max_body_bytes=10_000), store=memory_config.store,
                    knowledge=memory_config.knowledge)
    with TestClient(create_app(config)) as c:
        yield c


def test_page_and_health(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200 and "Kefu" in page.text and '<script src="/chat/chat.js">' in page.text
    script = client.get("/chat/chat.js")  # the page's code is a static file (strict CSP: no inline script)
    assert script.status_code == 200 and "/api/chat" in script.text
    assert script.headers["content-type"].startswith("text/javascript")
    assert client.get("/chat/../server.py").status_code == 404 and client.get("/chat/x.js").status_code == 404
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
