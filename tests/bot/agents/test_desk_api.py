"""The desk's shift tools over the REST API, as a script or the console calls them: presence,
wrap-up at resolve and the resolved search, the handoff packet, the team lead's view and
agent management."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import AsyncIterator

import httpx
import pytest
from starlette.applications import Starlette

from bot.agents.api import OPENAPI
from bot.agents.auth import hash_password
from bot.agents.console import AgentConsole
from bot.agents.desk import HumanDesk
from bot.config import AgentUserConfig, Config, SkillGroupConfig
from bot.server import exception_handlers
from bot.storage.conversations import Store
from bot.types import Candidate, HandoffRequest, Role, TranscriptLine
from knowledge.schema import KnowledgeBase, parse_kb
from tests.bot.agents.conftest import Clock, RecordingChannel, hand_off
from tests.bot.agents.test_api import PASSWORD


@pytest.fixture(scope="module")
def password_hash() -> str:
    return hash_password(PASSWORD)


@pytest.fixture
def console(store: Store, desk_config: Config, clock: Clock, channel: RecordingChannel,
            password_hash: str) -> AgentConsole:
    users = (AgentUserConfig("li", password_hash, "agent"), AgentUserConfig("boss", password_hash, "admin"))
    agents = dataclasses.replace(desk_config.agents, users=users, groups=(SkillGroupConfig("English", ("en",)),))
    desk = HumanDesk(store, dataclasses.replace(desk_config, agents=agents), clock=clock,
                     channels={"web": channel})  # type: ignore[dict-item]
    return AgentConsole(desk)


@pytest.fixture
async def client(console: AgentConsole) -> AsyncIterator[httpx.AsyncClient]:
    app = Starlette(routes=console.routes(), exception_handlers=exception_handlers())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://kefu.test") as c:
        yield c


async def as_(client: httpx.AsyncClient, name: str, password: str = PASSWORD) -> dict[str, str]:
    client.cookies.clear()
    r = await client.post("/api/agent/login", json={"name": name, "password": password})
    assert r.status_code == 200, r.text
    return {"X-CSRF-Token": r.json()["csrf"]}


async def test_presence_wrapup_and_the_resolved_list_finds_it_by_a_word(
        client: httpx.AsyncClient, console: AgentConsole, clock: Clock) -> None:
    li = await as_(client, "li")
    assert (await client.get("/api/agent/tickets")).json()["status"] == "online"  # calling in = online
    bad = await client.post("/api/agent/status", json={"status": "sleeping"}, headers=li)
    assert bad.status_code == 400 and "online, busy, away" in bad.json()["error"]
    assert (await client.post("/api/agent/status", json={"status": "busy"}, headers=li)).status_code == 200
    assert (await client.get("/api/agent/tickets")).json()["status"] == "busy"

    await hand_off(console.desk, "c1", ["我买的台灯坏了", "我要投诉，太差劲了"])
    ticket_id = (await client.get("/api/agent/tickets")).json()["queued"][0]["id"]
    await client.post(f"/api/agent/tickets/{ticket_id}/claim", headers=li)
    await client.post(f"/api/agent/tickets/{ticket_id}/messages", json={"text": "给您补发一个新台灯"}, headers=li)
    wrong = await client.post(f"/api/agent/tickets/{ticket_id}/resolve", headers=li,
                              json={"wrapup": {"category": "质量问题", "tags": ["x" * 40]}})
    assert wrong.status_code == 400 and "tags" in wrong.json()["error"]
    done = await client.post(f"/api/agent/tickets/{ticket_id}/resolve", headers=li, json={"wrapup": {
        "category": "质量问题", "tags": ["台灯", "补发"], "outcome": "补发新品，客户接受"}})
    assert done.status_code == 200 and done.json()["ticket"]["wrapup"]["outcome"] == "补发新品，客户接受"

    for query, found in (({"q": "台灯坏了"}, 1), ({"q": "补发一个新"}, 1), ({"tag": "补发"}, 1),
                         ({"tag": "质量问题"}, 1), ({"agent": "li"}, 1), ({"agent": "wang"}, 0),
                         ({"q": "退款"}, 0), ({"customer": "客户c1"}, 1), ({"since": "2020-01-01"}, 1),
                         ({"until": "2020-01-01"}, 0)):
        r = await client.get("/api/agent/resolved", params=query)
        assert r.status_code == 200 and r.json()["count"] == found, (query, r.json())
    bad_day = await client.get("/api/agent/resolved", params={"since": "last week"})
    assert bad_day.status_code == 400 and "YYYY-MM-DD" in bad_day.json()["error"]


async def test_the_packet_and_the_bots_answers_ready_to_send(console: AgentConsole) -> None:
    desk = console.desk
    desk.knowledge = _kb  # what the composition root passes: the live knowledge base
    lines = [TranscriptLine(Role.CUSTOMER, "退款多久到账", desk.clock(),
                            {"decision": {"action": "answer", "entry_id": "refund-time"}}),
             TranscriptLine(Role.BOT, "1-3个工作日", desk.clock())]
    conv, _ = await hand_off(desk, "p1", ["退款多久到账"])
    await desk.store.save_conversation(conv, lines)
    loaded = await desk.store.load_conversation(conv.id)
    assert loaded is not None
    conv = loaded
    said = TranscriptLine(Role.CUSTOMER, "都一个星期了还没到账！！骗子，我要退款", desk.clock())
    request = HandoffRequest("complaint", "insult: 骗子", (Candidate("refund-time", 0.4, "退款多久到账"),))
    await desk.cancelled(conv)
    await desk.open_ticket(conv.evolve(transcript=(*conv.transcript, said)), request)
    ticket = await desk.tickets.open_for(conv.id)
    assert ticket is not None
    detail = await desk.detail(ticket.id)
    packet = detail["context"]["packet"]
    assert packet["asked"][0] == "退款多久到账"
    assert packet["bot_answered"] == [{"entry_id": "refund-time", "question": "退款多久到账"}]
    assert packet["unhappy_about"] == "insult: 骗子" and packet["wants"] == ["退款"]
    assert packet["customer_type"] == "angry" and "抱歉" in packet["first_words"]
    assert detail["candidate_answers"][0]["answer"] == "退款1-3个工作日到账。"


def _kb() -> KnowledgeBase:
    return parse_kb("- id: refund-time\n  questions: [退款多久到账]\n  answer: {zh: 退款1-3个工作日到账。}\n")


async def test_team_lead_sees_load_and_first_response_and_manages_agents(
        client: httpx.AsyncClient, console: AgentConsole, clock: Clock) -> None:
    li = await as_(client, "li")
    assert (await client.get("/api/agent/team")).status_code == 403
    assert (await client.post("/api/agent/agents", json={"name": "x", "password": "long-enough"},
                              headers=li)).status_code == 403
    await hand_off(console.desk, "t1", ["转人工"], reason="human_request")
    ticket_id = (await client.get("/api/agent/tickets")).json()["queued"][0]["id"]
    await client.post(f"/api/agent/tickets/{ticket_id}/claim", headers=li)
    clock.advance(90)
    await client.post(f"/api/agent/tickets/{ticket_id}/messages", json={"text": "您好"}, headers=li)

    boss = await as_(client, "boss")
    team = (await client.get("/api/agent/team")).json()
    row = next(a for a in team["agents"] if a["name"] == "li")
    assert row["load"] == 1 and row["limit"] == 5 and row["first_response_seconds"] == 90
    assert row["open"][0]["id"] == ticket_id and row["status"] == "online" and row["sla_breaches"] == 0

    made = await client.post("/api/agent/agents", headers=boss, json={
        "name": "wang", "password": "wang-password", "groups": ["English"], "max_chats": 3})
    assert made.status_code == 201 and made.json()["agent"]["groups"] == ["English"]
    again = await client.post("/api/agent/agents", headers=boss, json={"name": "wang", "password": "wang-password"})
    assert again.status_code == 409
    bad_group = await client.patch("/api/agent/agents/wang", headers=boss, json={"groups": ["VIP"]})
    assert bad_group.status_code == 400 and "VIP" in bad_group.json()["error"]
    config_user = await client.patch("/api/agent/agents/li", headers=boss, json={"disabled": True})
    assert config_user.status_code == 409 and "config file" in config_user.json()["error"]

    reassigned = await client.post(f"/api/agent/tickets/{ticket_id}/reassign", headers=boss, json={"to": "wang"})
    assert reassigned.status_code == 200 and reassigned.json()["ticket"]["owner"] == "wang"
    await as_(client, "wang", "wang-password")
    assert (await client.get("/api/agent/me")).json()["name"] == "wang"

    boss = await as_(client, "boss")
    reset = await client.patch("/api/agent/agents/wang", headers=boss, json={"password": "new-password-1",
                                                                          "role": "admin"})
    assert reset.status_code == 200 and reset.json()["agent"]["role"] == "admin"
    await as_(client, "wang", "new-password-1")
    boss = await as_(client, "boss")
    off = await client.patch("/api/agent/agents/wang", headers=boss, json={"disabled": True})
    assert off.status_code == 200
    client.cookies.clear()
    refused = await client.post("/api/agent/login", json={"name": "wang", "password": "new-password-1"})
    assert refused.status_code == 401
    boss = await as_(client, "boss")
    names = {a["name"]: a for a in (await client.get("/api/agent/agents")).json()["agents"]}
    assert names["wang"]["disabled"] is True and names["li"]["configured"] is True


async def test_transfer_to_a_group_over_the_api(client: httpx.AsyncClient, console: AgentConsole) -> None:
    li = await as_(client, "li")
    await hand_off(console.desk, "g1", ["转人工"], reason="human_request")
    ticket_id = (await client.get("/api/agent/tickets")).json()["queued"][0]["id"]
    await client.post(f"/api/agent/tickets/{ticket_id}/claim", headers=li)
    unknown = await client.post(f"/api/agent/tickets/{ticket_id}/transfer", json={"group": "VIP"}, headers=li)
    assert unknown.status_code == 404 and "English" in unknown.json()["error"]
    moved = await client.post(f"/api/agent/tickets/{ticket_id}/transfer", json={"group": "English"}, headers=li)
    assert moved.status_code == 200 and moved.json()["ticket"]["status"] == "queued"
    assert moved.json()["ticket"]["group"] == "English"


async def test_one_customer_across_channels_with_outcomes_followups_and_attributes(
        client: httpx.AsyncClient, console: AgentConsole, clock: Clock) -> None:
    li = await as_(client, "li")
    desk = console.desk
    await hand_off(desk, "web1", ["台灯坏了"], reason="complaint")
    web = (await desk.tickets.queued())[0]
    await client.post(f"/api/agent/tickets/{web.id}/claim", headers=li)
    await client.post(f"/api/agent/tickets/{web.id}/resolve", headers=li,
                      json={"wrapup": {"category": "质量问题", "outcome": "补发新台灯"}})
    clock.advance(60)
    await hand_off(desk, "tg1", ["补发的还没到"], reason="human_request", channel="telegram")
    tg = (await desk.tickets.queued())[0]
    await client.post(f"/api/agent/tickets/{tg.id}/claim", headers=li)
    await client.post(f"/api/agent/tickets/{tg.id}/followups", headers=li, json={"minutes": 60, "text": "查物流"})

    bad = await client.post("/api/agent/customers/telegram/u-tg1/link", headers=li, json={"identity": "u-web1"})
    assert bad.status_code == 400 and "channel:user_id" in bad.json()["error"]
    linked = await client.post("/api/agent/customers/telegram/u-tg1/link", headers=li, json={"identity": "web:u-web1"})
    assert linked.status_code == 200
    profile = (await client.get("/api/agent/customers/web/u-web1")).json()  # either channel id: one customer
    assert sorted(profile["identities"]) == ["telegram:u-tg1", "web:u-web1"]
    assert [t["channel"] for t in profile["tickets"]] == ["telegram", "web"]
    assert profile["tickets"][1]["wrapup"]["outcome"] == "补发新台灯"
    assert [f["text"] for f in profile["followups"]] == ["查物流"]

    wrong = await client.patch("/api/agent/customers/web/u-web1", headers=li, json={"attributes": {"会员": ["gold"]}})
    assert wrong.status_code == 400 and "会员" in wrong.json()["error"]
    await client.patch("/api/agent/customers/web/u-web1", headers=li,
                       json={"name": "张女士", "attributes": {"会员等级": "金穗", "偏好": "只接受补发"}})
    await client.patch("/api/agent/customers/telegram/u-tg1", headers=li, json={"attributes": {"偏好": None}})
    detail = (await client.get(f"/api/agent/tickets/{tg.id}")).json()
    assert detail["customer"]["name"] == "张女士" and detail["customer"]["attributes"] == {"会员等级": "金穗"}


ADMIN_ONLY = [(method.upper(), re.sub(r"\{(\w+)\}", "x", path)) for path, ops in OPENAPI["paths"].items()
              for method, op in ops.items() if "(admins)" in op.get("summary", "")]


@pytest.mark.parametrize(("method", "path"), ADMIN_ONLY)
async def test_team_lead_routes_are_refused_to_agents(client: httpx.AsyncClient, method: str, path: str) -> None:
    li = await as_(client, "li")
    r = await client.request(method, path, json={"to": "li", "name": "x", "password": "long-enough-1"}, headers=li)
    assert r.status_code == 403 and "admins only" in r.json()["error"], (method, path, r.text)


def test_every_team_lead_route_is_listed() -> None:
    assert {path for _, path in ADMIN_ONLY} >= {"/api/agent/team", "/api/agent/agents", "/api/agent/agents/x",
                                                 "/api/agent/tickets/x/reassign", "/api/agent/blocked/x/x",
                                                 "/api/agent/ratings"}


async def test_an_order_a_business_action_looked_up_is_on_the_ticket(console: AgentConsole) -> None:
    desk = console.desk
    conv, _ = await hand_off(desk, "o1", ["我的订单A1001到哪了", "转人工"], reason="human_request")
    await desk.store.save_conversation(conv.evolve(slots={"order_id": "A1001", "order_status": "运输中"}), [])
    ticket = await desk.tickets.open_for(conv.id)
    assert ticket is not None
    assert (await desk.detail(ticket.id))["conversation"]["slots"] == {"order_id": "A1001", "order_status": "运输中"}


async def test_a_lead_sets_the_display_name_the_customer_sees(client: httpx.AsyncClient, console: AgentConsole) -> None:
    boss = await as_(client, "boss")
    made = await client.post("/api/agent/agents", headers=boss, json={
        "name": "wang", "password": "wang-password", "display_name": "小王"})
    assert made.status_code == 201 and made.json()["agent"]["display_name"] == "小王"
    conv, _ = await hand_off(console.desk, "d1", ["转人工"], reason="human_request")
    ticket_id = (await client.get("/api/agent/tickets")).json()["queued"][0]["id"]
    given = await client.post(f"/api/agent/tickets/{ticket_id}/reassign", headers=boss, json={"to": "wang"})
    assert given.status_code == 200 and given.json()["ticket"]["owner"] == "wang"
    stored = await console.desk.store.load_conversation(conv.id)
    assert stored is not None
    joined = next(line for line in reversed(stored.transcript) if line.meta.get("kind") == "agent_joined")
    assert "小王" in joined.text and "wang" not in joined.text  # the display name, never the login

    renamed = await client.patch("/api/agent/agents/wang", headers=boss, json={"display_name": "王师傅"})
    assert renamed.status_code == 200 and renamed.json()["agent"]["display_name"] == "王师傅"
    too_long = await client.patch("/api/agent/agents/wang", headers=boss, json={"display_name": "王" * 40})
    assert too_long.status_code == 400 and "display name" in too_long.json()["error"]
    names = {a["name"]: a for a in (await client.get("/api/agent/agents")).json()["agents"]}
    assert names["wang"]["display_name"] == "王师傅"
