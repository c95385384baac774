"""The console's REST API as a script or the browser calls it: login, CSRF, tokens, ticket actions."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator

import httpx
import pytest
from starlette.applications import Starlette

from bot import keys
from bot.agents.auth import hash_password
from bot.agents.console import AgentConsole
from bot.agents.desk import HumanDesk
from bot.config import AgentsConfig, AgentUserConfig, Config
from bot.server import exception_handlers
from bot.storage.conversations import Store
from bot.types import Conversation, InboundMessage, Role, TranscriptLine
from tests.bot.agents.conftest import Clock, RecordingChannel, hand_off

PASSWORD = "s3cret-密码"


@pytest.fixture(scope="module")
def password_hash() -> str:
    return hash_password(PASSWORD)


@pytest.fixture
def console(store: Store, desk_config: Config, clock: Clock, channel: RecordingChannel,
            password_hash: str) -> AgentConsole:
    users = (AgentUserConfig("li", password_hash, "agent", display_name="小李"),
             AgentUserConfig("wang", password_hash, "agent"),
             AgentUserConfig("boss", password_hash, "admin"))
    config = dataclasses.replace(desk_config, agents=dataclasses.replace(desk_config.agents, users=users))
    desk = HumanDesk(store, config, clock=clock, channels={"web": channel})  # type: ignore[dict-item]
    return AgentConsole(desk)


@pytest.fixture
async def client(console: AgentConsole) -> AsyncIterator[httpx.AsyncClient]:
    app = Starlette(routes=console.routes(), exception_handlers=exception_handlers())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://kefu.test") as c:
        yield c


async def login(client: httpx.AsyncClient, name: str = "li") -> dict[str, str]:
    r = await client.post("/api/agent/login", json={"name": name, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return {"X-CSRF-Token": r.json()["csrf"]}


async def test_login_wrong_password_and_unknown_agent_are_401(client: httpx.AsyncClient) -> None:
    for name, password in (("li", "wrong"), ("nobody", PASSWORD)):
        r = await client.post("/api/agent/login", json={"name": name, "password": password})
        assert r.status_code == 401 and "wrong name or password" in r.json()["error"]
    assert (await client.get("/api/agent/tickets")).status_code == 401


async def test_session_cookie_is_http_only_and_changes_need_the_csrf_token(
        client: httpx.AsyncClient, console: AgentConsole) -> None:
    r = await client.post("/api/agent/login", json={"name": "li", "password": PASSWORD})
    cookie = r.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie
    csrf = r.json()["csrf"]
    assert (await client.get("/api/agent/me")).json() == {"name": "li", "role": "agent", "csrf": csrf}
    await hand_off(console.desk, "c1", ["我要投诉"])
    ticket_id = (await client.get("/api/agent/tickets")).json()["queued"][0]["id"]
    forged = await client.post(f"/api/agent/tickets/{ticket_id}/claim")
    assert forged.status_code == 403 and "CSRF" in forged.json()["error"]
    wrong = await client.post(f"/api/agent/tickets/{ticket_id}/claim", headers={"X-CSRF-Token": "guess"})
    assert wrong.status_code == 403
    ok = await client.post(f"/api/agent/tickets/{ticket_id}/claim", headers={"X-CSRF-Token": csrf})
    assert ok.status_code == 200 and ok.json()["ticket"]["owner"] == "li"
    await client.post("/api/agent/logout", headers={"X-CSRF-Token": csrf})
    assert (await client.get("/api/agent/me")).status_code == 401


async def test_scripts_use_bearer_tokens_without_csrf(client: httpx.AsyncClient, console: AgentConsole) -> None:
    token = await console.directory.issue_token("wang")
    assert "kefu_" in token and token not in str(await console.desk.store.redis.hgetall(keys.agent_tokens()))
    await hand_off(console.desk, "c1", ["转人工"], reason="human_request")
    headers = {"Authorization": f"Bearer {token}"}
    inbox = (await client.get("/api/agent/tickets", headers=headers)).json()
    ticket_id = inbox["queued"][0]["id"]
    assert (await client.post(f"/api/agent/tickets/{ticket_id}/claim", headers=headers)).status_code == 200
    bad = await client.get("/api/agent/tickets", headers={"Authorization": "Bearer kefu_forged"})
    assert bad.status_code == 401


async def test_full_ticket_lifecycle_over_the_api(client: httpx.AsyncClient, console: AgentConsole,
                                                  channel: RecordingChannel) -> None:
    csrf = await login(client)
    _conv, _ = await hand_off(console.desk, "c1", ["退款多久到账", "等了一个星期了，我要投诉"])
    inbox = (await client.get("/api/agent/tickets")).json()
    assert inbox["queued"][0]["position"] == 1 and inbox["queued"][0]["reason"] == "complaint"
    ticket_id = inbox["queued"][0]["id"]
    assert (await client.post(f"/api/agent/tickets/{ticket_id}/claim", headers=csrf)).status_code == 200
    second = await client.post(f"/api/agent/tickets/{ticket_id}/claim", headers=csrf)
    assert second.status_code == 409

    r = await client.post(f"/api/agent/tickets/{ticket_id}/messages", json={"text": "您好，我来处理"}, headers=csrf)
    assert r.status_code == 200 and r.json()["line"]["role"] == "agent" and r.json()["deferred"] is None
    channel.defer = "window_closed"
    r = await client.post(f"/api/agent/tickets/{ticket_id}/messages", json={"text": "物流已查到"}, headers=csrf)
    assert r.status_code == 202 and "window_closed" in r.json()["deferred"]
    channel.defer = ""
    r = await client.post(f"/api/agent/tickets/{ticket_id}/notes", json={"text": "内部：已联系仓库"}, headers=csrf)
    assert r.status_code == 200
    r = await client.post(f"/api/agent/tickets/{ticket_id}/followups", json={"minutes": 30, "text": "回电"},
                          headers=csrf)
    assert r.status_code == 200 and r.json()["followup"]["agent"] == "li"
    detail = (await client.get(f"/api/agent/tickets/{ticket_id}")).json()
    assert [n["kind"] for n in detail["notes"]] == ["delivery_deferred", "note", "follow_up"]
    assert detail["notes"][1]["text"] == "内部：已联系仓库"
    assert detail["transcript"][-1]["text"] == "物流已查到"
    assert not any("内部" in line["text"] for line in detail["transcript"])
    assert not any("内部" in text for _, text in channel.sent)

    mine = (await client.get("/api/agent/tickets")).json()["mine"]
    assert [t["id"] for t in mine] == [ticket_id]
    r = await client.post(f"/api/agent/tickets/{ticket_id}/transfer", json={"to": "nobody"}, headers=csrf)
    assert r.status_code == 404
    r = await client.post(f"/api/agent/tickets/{ticket_id}/resolve", headers=csrf)
    assert r.status_code == 200 and r.json()["ticket"]["status"] == "resolved"
    assert channel.sent[-1][1].startswith("本次服务已结束")


async def test_ratings_are_for_admins(client: httpx.AsyncClient) -> None:
    await login(client, "li")
    assert (await client.get("/api/agent/ratings")).status_code == 403
    await login(client, "boss")
    assert (await client.get("/api/agent/ratings")).json()["count"] == 0


async def test_bad_bodies_are_clear_400s(client: httpx.AsyncClient, console: AgentConsole) -> None:
    csrf = await login(client)
    await hand_off(console.desk, "c1", ["转人工"])
    ticket_id = (await client.get("/api/agent/tickets")).json()["queued"][0]["id"]
    await client.post(f"/api/agent/tickets/{ticket_id}/claim", headers=csrf)
    for path, body in (("messages", {"text": ""}), ("messages", ["x"]), ("followups", {"minutes": "soon"}),
                       ("followups", {"minutes": -5})):
        r = await client.post(f"/api/agent/tickets/{ticket_id}/{path}", json=body, headers=csrf)
        assert r.status_code == 400, (path, body, r.text)
    assert (await client.get("/api/agent/tickets/nope")).status_code == 404


async def test_an_agent_marks_the_bots_wrong_answer_for_the_admins_review(
        client: httpx.AsyncClient, console: AgentConsole, store: Store) -> None:
    """The bot answered "怎么退货" with the return entry, the customer then asked for a human: the
    agent sees which bot line was an answer and marks it wrong; it joins the admin review list."""
    csrf = await login(client)
    now = console.desk.clock()
    asked = InboundMessage("web", "u-c1", "c1", "怎么退货", "m-0", now)
    await store.save_conversation(Conversation.start(asked), [
        TranscriptLine(Role.CUSTOMER, "怎么退货", now, {"message_id": "m-0", "decision": {
            "action": "answer", "entry_id": "return-policy", "confidence": 0.93}}),
        TranscriptLine(Role.BOT, "七天无理由退货…", now)])
    await hand_off(console.desk, "c1", ["不是这个，转人工"], reason="human_request")
    ticket_id = (await client.get("/api/agent/tickets")).json()["queued"][0]["id"]
    transcript = (await client.get(f"/api/agent/tickets/{ticket_id}")).json()["transcript"]
    [answer] = [line for line in transcript if "answer_entry" in line]
    assert (answer["text"], answer["answer_entry"], answer["seq"]) == ("七天无理由退货…", "return-policy", 2)

    path = f"/api/agent/tickets/{ticket_id}/wrong-answers"
    assert (await client.post(path, json={"seq": 2}, headers=csrf)).json() == {"recorded": True}
    assert (await client.post(path, json={"seq": 2}, headers=csrf)).json() == {"recorded": False}  # once
    [row] = await store.records.unanswered()
    assert (row["text"], row["reason"], row["entry_id"]) == ("怎么退货", "agent_wrong", "return-policy")

    for body, status, words in (({"seq": 99}, 404, "has no message #99"),  # a turn this conversation lacks
                                ({"seq": 1}, 400, "is not an answer of the bot"),  # the customer's line
                                ({"seq": 3}, 400, "is not an answer of the bot"),  # the handoff request
                                ({"seq": "2"}, 400, "'seq' must be"), ({}, 400, "'seq' must be")):
        r = await client.post(path, json=body, headers=csrf)
        assert r.status_code == status and words in r.json()["error"], (body, r.text)
        assert "\n" not in r.json()["error"]
    assert (await client.post("/api/agent/tickets/nope/wrong-answers", json={"seq": 2},
                              headers=csrf)).status_code == 404
    assert (await client.post(path, json={"seq": 2})).status_code == 403  # a browser request without CSRF


async def test_openapi_documents_every_route(client: httpx.AsyncClient, console: AgentConsole) -> None:
    spec = (await client.get("/api/agent/openapi.json")).json()
    assert spec["openapi"].startswith("3.")
    for route in console.routes():
        path = getattr(route, "path", "")
        if not path.startswith("/api/agent"):
            continue
        methods = {m.lower() for m in getattr(route, "methods", set())} - {"head"}
        assert path in spec["paths"], path
        assert methods <= set(spec["paths"][path]), path


def test_users_in_config_need_a_real_hash(store: Store) -> None:
    from bot.agents.auth import AgentDirectory
    from bot.errors import ConfigError

    with pytest.raises(ConfigError, match=r"agents.users\[0\]"):
        AgentDirectory(store.redis, AgentsConfig(users=(AgentUserConfig("li", "plaintext", "agent"),)))


async def test_the_customer_sees_the_display_name_and_when_the_agent_types(
        client: httpx.AsyncClient, console: AgentConsole) -> None:
    csrf = await login(client, "li")
    conv, _ = await hand_off(console.desk, "c7", ["转人工"])
    ticket_id = (await client.get("/api/agent/tickets")).json()["queued"][0]["id"]
    early = await client.post(f"/api/agent/tickets/{ticket_id}/typing", headers=csrf)
    assert early.status_code == 409  # not claimed: nobody is typing to this customer yet
    assert (await client.post(f"/api/agent/tickets/{ticket_id}/claim", headers=csrf)).status_code == 200
    assert (await client.post(f"/api/agent/tickets/{ticket_id}/typing", headers=csrf)).status_code == 200
    assert (await console.desk.store.watch(conv.id))[1] is True
    wang = await login(client, "wang")
    other = await client.post(f"/api/agent/tickets/{ticket_id}/typing", headers=wang)
    assert other.status_code == 403  # not wang's ticket
    csrf = await login(client, "li")
    assert (await client.post(f"/api/agent/tickets/{ticket_id}/messages", json={"text": "您好"},
                              headers=csrf)).status_code == 200
    stored = await console.desk.store.load_conversation(conv.id)
    assert stored is not None
    joined, said = stored.transcript[-2:]
    assert "小李" in joined.text and "li" not in joined.text  # "人工客服小李已接入", never the login
    assert said.meta["agent_name"] == "小李" and said.meta["agent"] == "li"
