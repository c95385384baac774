"""The REST API under ``/api/agent/...``: what the console uses, and what scripts may call.

Browsers authenticate with the session cookie set by ``POST /api/agent/login`` and must echo
the session's CSRF token in ``X-CSRF-Token`` on every state-changing request; scripts send
``Authorization: Bearer <token>`` (from ``kefu agent token NAME``) and need no CSRF token, since
a browser never attaches that header on its own.
"""

from __future__ import annotations

import datetime
from typing import Any
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from bot.agents.access import COOKIE, ConsoleAccess
from bot.agents.auth import Agent, AgentDirectory
from bot.agents.desk import STATUSES, HumanDesk, line_json
from bot.config import AgentsConfig
from bot.errors import BadRequest, Conflict, Forbidden, NotAuthenticated, NotFound
from bot.json_body import json_object

DEFAULT_CANNED = (
    {"title": "问候 Greeting", "text": "您好，我是人工客服，已经看过您和智能客服的对话记录，马上为您处理。"},
    {"title": "稍候 Hold on", "text": "我正在为您核实情况，请稍等两分钟，马上回复您。"},
    {"title": "致歉 Apology", "text": "非常抱歉给您带来了不便，您的心情我完全理解，我们一定负责到底。"},
    {"title": "跟进 Follow-up", "text": "这个问题需要同事进一步核实，我会在今天下班前给您回复处理结果。"},
    {"title": "Greeting EN", "text": "Hello, I'm an agent; I've read our conversation so far and will sort this out."},
    {"title": "Closing 结束", "text": "还有其他可以帮您的吗？/ Is there anything else I can help with?"},
)


def _groups(body: dict[str, Any], known: list[str]) -> tuple[str, ...] | None:
    if "groups" not in body:
        return None
    groups = body["groups"]
    if not isinstance(groups, list) or not all(isinstance(g, str) for g in groups):
        raise BadRequest("'groups' must be a list of group names")
    unknown = [g for g in groups if g not in known]
    if unknown:
        raise BadRequest(f"unknown group(s) {', '.join(unknown)}; configured: {', '.join(known) or 'none'}")
    return tuple(groups)


def _max_chats(body: dict[str, Any]) -> int | None:
    if "max_chats" not in body:
        return None
    value = body["max_chats"]
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 100:
        raise BadRequest("'max_chats' must be a whole number from 0 (the default limit) to 100")
    return value


def _day(text: str, key: str, zone: datetime.tzinfo) -> float:
    """Midnight starting the day, in the desk's time zone (service_hours.timezone)."""
    if not text:
        return 0.0
    try:
        return datetime.datetime.combine(datetime.date.fromisoformat(text), datetime.time(), zone).timestamp()
    except ValueError:
        raise BadRequest(f"'{key}' must be a date YYYY-MM-DD, got {text[:20]!r}") from None


def _display_name(body: dict[str, Any]) -> str | None:
    """The optional ``display_name`` (what customers see, e.g. 小李); None when the body has none."""
    value = body.get("display_name")
    if value is None:
        return None
    if not isinstance(value, str):
        raise BadRequest("'display_name' must be a string")
    return value


def _text(body: dict[str, Any], key: str) -> str:
    value = body.get(key)
    if not isinstance(value, str) or not value.strip():
        raise BadRequest(f"'{key}' must be a non-empty string")
    return value


def same_origin(request: Request) -> None:
    """Login CSRF: a form or ``fetch`` from another site (``text/plain`` needs no preflight) must
    not log the victim's browser into the attacker's account.  Only JSON is accepted, and a
    browser's ``Origin`` must be this site's; scripts without an Origin are fine."""
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media != "application/json":
        raise BadRequest("send the login as application/json", status=415)
    origin = request.headers.get("origin")
    if origin is not None and urlsplit(origin).netloc.lower() != request.headers.get("host", "").lower():
        raise Forbidden("login from another site's page is not accepted")


class AgentApi:
    def __init__(self, desk: HumanDesk, access: ConsoleAccess, config: AgentsConfig) -> None:
        """``access`` identifies callers (shared with the admin API)."""
        self.desk = desk
        self.access = access
        self.directory: AgentDirectory = access.directory
        self.config = config

    async def agent(self, request: Request) -> Agent:
        """The caller (their presence refreshed), or 401; state-changing browser requests must
        carry the CSRF token."""
        return await self.access.agent(request)

    async def admin(self, request: Request) -> Agent:
        return await self.access.admin(request)

    async def _caller(self, request: Request) -> Agent:
        return await self.access.caller(request)

    def routes(self) -> list[BaseRoute]:
        p = "/api/agent"
        return [
            Route(f"{p}/openapi.json", self.openapi, methods=["GET"]),
            Route(f"{p}/login", self.login, methods=["POST"]),
            Route(f"{p}/logout", self.logout, methods=["POST"]),
            Route(f"{p}/me", self.me, methods=["GET"]),
            Route(f"{p}/agents", self.agents, methods=["GET"]),
            Route(f"{p}/agents", self.add_agent, methods=["POST"]),
            Route(f"{p}/agents/{{name}}", self.update_agent, methods=["PATCH"]),
            Route(f"{p}/status", self.status, methods=["POST"]),
            Route(f"{p}/team", self.team, methods=["GET"]),
            Route(f"{p}/resolved", self.resolved, methods=["GET"]),
            Route(f"{p}/blocked", self.blocked, methods=["GET"]),
            Route(f"{p}/customers/{{channel}}/{{user_id}}", self.customer, methods=["GET"]),
            Route(f"{p}/customers/{{channel}}/{{user_id}}", self.update_customer, methods=["PATCH"]),
            Route(f"{p}/customers/{{channel}}/{{user_id}}/link", self.link_customer, methods=["POST"]),
            Route(f"{p}/blocked/{{channel}}/{{user_id}}", self.unblock, methods=["DELETE"]),
            Route(f"{p}/canned", self.canned, methods=["GET"]),
            Route(f"{p}/ratings", self.ratings, methods=["GET"]),
            Route(f"{p}/tickets", self.tickets, methods=["GET"]),
            Route(f"{p}/tickets/{{ticket_id}}", self.ticket, methods=["GET"]),
            Route(f"{p}/tickets/{{ticket_id}}/export", self.export, methods=["GET"]),
            Route(f"{p}/tickets/{{ticket_id}}/claim", self.claim, methods=["POST"]),
            Route(f"{p}/tickets/{{ticket_id}}/messages", self.message, methods=["POST"]),
            Route(f"{p}/tickets/{{ticket_id}}/typing", self.typing, methods=["POST"]),
            Route(f"{p}/tickets/{{ticket_id}}/notes", self.note, methods=["POST"]),
            Route(f"{p}/tickets/{{ticket_id}}/transfer", self.transfer, methods=["POST"]),
            Route(f"{p}/tickets/{{ticket_id}}/reassign", self.reassign, methods=["POST"]),
            Route(f"{p}/tickets/{{ticket_id}}/block", self.block, methods=["POST"]),
            Route(f"{p}/tickets/{{ticket_id}}/resolve", self.resolve, methods=["POST"]),
            Route(f"{p}/tickets/{{ticket_id}}/handback", self.handback, methods=["POST"]),
            Route(f"{p}/tickets/{{ticket_id}}/followups", self.followup, methods=["POST"]),
            Route(f"{p}/tickets/{{ticket_id}}/wrong-answers", self.wrong_answer, methods=["POST"]),
        ]

    async def openapi(self, request: Request) -> Response:
        return JSONResponse(OPENAPI)

    async def login(self, request: Request) -> Response:
        same_origin(request)
        body = await json_object(request)
        client = request.client.host if request.client else "-"
        session = await self.directory.login(_text(body, "name"), _text(body, "password"), client)
        if session is None:
            raise NotAuthenticated("wrong name or password")
        response = JSONResponse({"name": session.agent.name, "role": session.agent.role, "csrf": session.csrf})
        response.set_cookie(COOKIE, session.token, max_age=int(self.config.session_hours * 3600), httponly=True,
                            samesite="strict", secure=request.url.scheme == "https", path="/")
        return response

    async def logout(self, request: Request) -> Response:
        agent = await self._caller(request)
        await self.desk.set_status(agent.name, "offline")  # their chats re-queue after the grace period
        token = request.cookies.get(COOKIE)
        if token:
            await self.directory.logout(token)
        response = JSONResponse({"ok": True})
        response.delete_cookie(COOKIE, path="/")
        return response

    async def me(self, request: Request) -> Response:
        agent = await self.agent(request)
        token = request.cookies.get(COOKIE)
        session = await self.directory.session(token) if token else None
        return JSONResponse({"name": agent.name, "role": agent.role, "csrf": session.csrf if session else ""})

    async def agents(self, request: Request) -> Response:
        await self.agent(request)
        presence = await self.desk.statuses()
        return JSONResponse({"agents": [
            {**a.to_json(), "status": presence.get(a.name, {}).get("status", "offline")}
            for a in await self.directory.all()], "groups": self.desk.group_names()})

    async def add_agent(self, request: Request) -> Response:
        """A team lead adds an agent (stored in Redis, like `kefu agent add`)."""
        await self.admin(request)
        body = await json_object(request)
        name, password = _text(body, "name").strip(), _text(body, "password")
        if await self.directory.get(name) is not None:
            raise Conflict(f"an agent named {name!r} already exists")
        agent = await self.directory.add(name, password, str(body.get("role") or "agent"),
                                         _display_name(body) or "", _groups(body, self.desk.group_names()) or (),
                                         _max_chats(body) or 0)
        return JSONResponse({"agent": agent.to_json()}, status_code=201)

    async def update_agent(self, request: Request) -> Response:
        """Role, display name, groups, chat limit, disabled, new password; only what the body names changes."""
        lead = await self.admin(request)
        body = await json_object(request)
        unknown = set(body) - {"role", "display_name", "groups", "max_chats", "disabled", "password"}
        if unknown:
            raise BadRequest(f"unknown field(s) {', '.join(sorted(unknown))}; "
                             "use role, display_name, groups, max_chats, disabled, password")
        name = request.path_params["name"]
        disabled = body.get("disabled")
        if disabled is not None and not isinstance(disabled, bool):
            raise BadRequest("'disabled' must be true or false")
        if disabled and name == lead.name:
            raise Conflict("you cannot disable yourself")
        password = body.get("password")
        if password is not None and not isinstance(password, str):
            raise BadRequest("'password' must be a string")
        role = body.get("role")
        if role is not None and not isinstance(role, str):
            raise BadRequest("'role' must be agent or admin")
        agent = await self.directory.update(name, role=role, groups=_groups(body, self.desk.group_names()),
                                            max_chats=_max_chats(body), disabled=disabled, password=password,
                                            display_name=_display_name(body))
        if agent.disabled:
            await self.desk.set_status(agent.name, "offline")
        return JSONResponse({"agent": agent.to_json()})

    async def status(self, request: Request) -> Response:
        """The caller's presence: online (gets new chats) · busy (keeps chats, gets none) · away."""
        agent = await self.agent(request)
        status = (await json_object(request)).get("status")
        if status not in STATUSES:
            raise BadRequest(f"'status' must be one of {', '.join(STATUSES)}")
        return JSONResponse({"presence": await self.desk.set_status(agent.name, str(status))})

    async def team(self, request: Request) -> Response:
        return JSONResponse(await self.desk.team(await self.admin(request)))

    async def resolved(self, request: Request) -> Response:
        """Closed conversations, filtered: q (a word), agent, tag, customer, since/until (YYYY-MM-DD)."""
        await self.agent(request)
        query = request.query_params
        zone = self.desk.hours.zone
        since, until = _day(query.get("since", ""), "since", zone), _day(query.get("until", ""), "until", zone)
        if until:
            until += 86_400  # the whole closing day
        found = await self.desk.resolved(text=query.get("q", "")[:200], agent=query.get("agent", ""),
                                         tag=query.get("tag", ""), customer=query.get("customer", ""),
                                         since=since, until=until)
        return JSONResponse({"tickets": found, "count": len(found)})

    async def canned(self, request: Request) -> Response:
        await self.agent(request)
        items = [{"title": c.title, "text": c.text} for c in self.config.canned] or list(DEFAULT_CANNED)
        return JSONResponse({"canned": items})

    async def ratings(self, request: Request) -> Response:
        """Recent satisfaction ratings and their average (admins)."""
        agent = await self.agent(request)
        if not agent.admin:
            raise Forbidden("admins only")
        return JSONResponse(await self.desk.ratings())

    async def tickets(self, request: Request) -> Response:
        return JSONResponse(await self.desk.inbox(await self.agent(request)))

    async def ticket(self, request: Request) -> Response:
        await self.agent(request)
        return JSONResponse(await self.desk.detail(request.path_params["ticket_id"]))

    async def export(self, request: Request) -> Response:
        await self.agent(request)
        ticket_id = request.path_params["ticket_id"]
        return PlainTextResponse(await self.desk.export(ticket_id), headers={
            "Content-Disposition": f'attachment; filename="kefu-ticket-{ticket_id}.txt"'})

    async def claim(self, request: Request) -> Response:
        ticket = await self.desk.claim(request.path_params["ticket_id"], await self.agent(request))
        return JSONResponse({"ticket": ticket.to_json()})

    async def message(self, request: Request) -> Response:
        agent = await self.agent(request)
        text = _text(await json_object(request), "text")
        line, deferred = await self.desk.send(request.path_params["ticket_id"], agent, text)
        if deferred:  # kept by the channel, sent when it can (e.g. WeChat's 48-hour window)
            return JSONResponse({"line": line_json(line), "deferred": deferred}, status_code=202)
        return JSONResponse({"line": line_json(line), "deferred": None})

    async def typing(self, request: Request) -> Response:
        """The agent is typing a reply: the customer's web chat shows it for a few seconds."""
        await self.desk.typing(request.path_params["ticket_id"], await self.agent(request))
        return JSONResponse({"typing": True})

    async def note(self, request: Request) -> Response:
        agent = await self.agent(request)
        note = await self.desk.note(request.path_params["ticket_id"], agent, _text(await json_object(request), "text"))
        return JSONResponse({"note": note})

    async def transfer(self, request: Request) -> Response:
        """``{to}`` a colleague, or ``{group}`` back to the queue for a skill group."""
        agent = await self.agent(request)
        body = await json_object(request)
        if "group" in body and "to" not in body:
            ticket = await self.desk.transfer_to_group(request.path_params["ticket_id"], agent,
                                                       _text(body, "group"))
            return JSONResponse({"ticket": ticket.to_json()})
        target = await self.directory.get(_text(body, "to"))
        if target is None:
            raise NotFound("no such agent")
        ticket = await self.desk.transfer(request.path_params["ticket_id"], agent, target)
        return JSONResponse({"ticket": ticket.to_json()})

    async def block(self, request: Request) -> Response:
        """``{reason}``: the ticket's customer may no longer reach an agent (abuse)."""
        agent = await self.agent(request)
        reason = _text(await json_object(request), "reason")
        ticket = await self.desk.block(request.path_params["ticket_id"], agent, reason)
        return JSONResponse({"ticket": ticket.to_json()})

    async def customer(self, request: Request) -> Response:
        await self.agent(request)
        params = request.path_params
        return JSONResponse(await self.desk.customer(params["channel"], params["user_id"]))

    async def update_customer(self, request: Request) -> Response:
        """``{name?, attributes?: {key: text | null}}``."""
        await self.agent(request)
        body = await json_object(request)
        unknown = set(body) - {"name", "attributes"}
        if unknown:
            raise BadRequest(f"unknown field(s) {', '.join(sorted(unknown))}; use name, attributes")
        name, attributes = body.get("name"), body.get("attributes")
        if name is not None and not isinstance(name, str):
            raise BadRequest("'name' must be a string")
        if attributes is not None and not isinstance(attributes, dict):
            raise BadRequest("'attributes' must be an object of name → text (null removes one)")
        params = request.path_params
        return JSONResponse(await self.desk.update_customer(params["channel"], params["user_id"], name=name,
                                                            attributes=attributes))

    async def link_customer(self, request: Request) -> Response:
        """``{identity: "telegram:12345"}``: the same person on another channel."""
        await self.agent(request)
        identity = _text(await json_object(request), "identity").strip()
        params = request.path_params
        return JSONResponse(await self.desk.link_customer(params["channel"], params["user_id"], identity))

    async def blocked(self, request: Request) -> Response:
        await self.agent(request)
        return JSONResponse({"blocked": await self.desk.blocked()})

    async def unblock(self, request: Request) -> Response:
        lead = await self.admin(request)
        await self.desk.unblock(lead, request.path_params["channel"], request.path_params["user_id"])
        return JSONResponse({"ok": True})

    async def reassign(self, request: Request) -> Response:
        """A team lead gives a waiting or claimed ticket to ``{to}``."""
        lead = await self.admin(request)
        target = await self.directory.get(_text(await json_object(request), "to"))
        if target is None:
            raise NotFound("no such agent")
        ticket = await self.desk.reassign(request.path_params["ticket_id"], lead, target)
        return JSONResponse({"ticket": ticket.to_json()})

    async def resolve(self, request: Request) -> Response:
        """Resolve with an optional wrap-up body ``{category, tags, outcome}``."""
        agent = await self.agent(request)
        body = await json_object(request) if await request.body() else {}
        wrapup = body.get("wrapup", {})
        if not isinstance(wrapup, dict):
            raise BadRequest("'wrapup' must be an object {category, tags, outcome}")
        ticket = await self.desk.resolve(request.path_params["ticket_id"], agent, wrapup)
        return JSONResponse({"ticket": ticket.to_json()})

    async def handback(self, request: Request) -> Response:
        ticket = await self.desk.hand_back(request.path_params["ticket_id"], await self.agent(request))
        return JSONResponse({"ticket": ticket.to_json()})

    async def followup(self, request: Request) -> Response:
        agent = await self.agent(request)
        body = await json_object(request)
        minutes = body.get("minutes")
        if isinstance(minutes, bool) or not isinstance(minutes, int | float) or not 0 < minutes <= 60 * 24 * 30:
            raise BadRequest("'minutes' must be a number of minutes between 0 and 43200 (30 days)")
        text = body.get("text") or ""
        if not isinstance(text, str):
            raise BadRequest("'text' must be a string")
        reminder = await self.desk.follow_up(request.path_params["ticket_id"], agent, float(minutes), text)
        return JSONResponse({"followup": reminder})

    async def wrong_answer(self, request: Request) -> Response:
        agent = await self.agent(request)
        seq = (await json_object(request, '{"seq": 4}')).get("seq")
        if isinstance(seq, bool) or not isinstance(seq, int) or seq < 1:
            raise BadRequest("'seq' must be the number of the bot's answer in the transcript")
        return JSONResponse({"recorded": await self.desk.wrong_answer(request.path_params["ticket_id"], agent, seq)})


def _op(summary: str, *, body: dict[str, Any] | None = None, ticket: bool = False,
        public: bool = False, optional: tuple[str, ...] = ()) -> dict[str, Any]:
    op: dict[str, Any] = {"summary": summary, "responses": {
        "200": {"description": "OK", "content": {"application/json": {"schema": {"type": "object"}}}},
        "4XX": {"description": "error", "content": {"application/json": {
            "schema": {"$ref": "#/components/schemas/Error"}}}},
    }}
    if ticket:
        op["parameters"] = [{"name": "ticket_id", "in": "path", "required": True, "schema": {"type": "string"}}]
    if body is not None:
        required = [k for k in body if k not in optional]
        op["requestBody"] = {"required": bool(required), "content": {"application/json": {"schema": {
            "type": "object", "properties": body, "required": required}}}}
    if public:
        op["security"] = []
    return op


_STR = {"type": "string"}
_CUSTOMER = [{"name": n, "in": "path", "required": True, "schema": _STR} for n in ("channel", "user_id")]
OPENAPI: dict[str, Any] = {
    "openapi": "3.0.3",
    "info": {"title": "Kefu agent API", "version": "1",
             "description": "Handoff tickets, the waiting queue and the agent console's actions. Browsers use the "
                            "session cookie plus X-CSRF-Token; scripts use a bearer token from `kefu agent token`."},
    "components": {
        "securitySchemes": {
            "bearer": {"type": "http", "scheme": "bearer"},
            "session": {"type": "apiKey", "in": "cookie", "name": COOKIE},
        },
        "schemas": {"Error": {"type": "object", "properties": {"error": _STR}}},
    },
    "security": [{"bearer": []}, {"session": []}],
    "paths": {
        "/api/agent/openapi.json": {"get": _op("This document", public=True)},
        "/api/agent/login": {"post": _op("Log in; sets the session cookie and returns the CSRF token",
                                         body={"name": _STR, "password": _STR}, public=True)},
        "/api/agent/logout": {"post": _op("Log out")},
        "/api/agent/me": {"get": _op("The logged-in agent and the session's CSRF token")},
        "/api/agent/agents": {
            "get": _op("All agents with their presence, groups and chat limits; the configured skill groups"),
            "post": _op("Add an agent (admins)", body={"name": _STR, "password": _STR, "role": _STR,
                                                        "display_name": _STR,
                                                        "groups": {"type": "array", "items": _STR},
                                                        "max_chats": {"type": "integer"}},
                        optional=("role", "display_name", "groups", "max_chats"))},
        "/api/agent/agents/{name}": {"patch": {**_op(
            "Change an agent (admins): role, display_name, groups, max_chats, disabled, password; only the "
            "fields given",
            body={"role": _STR, "display_name": _STR, "groups": {"type": "array", "items": _STR},
                  "max_chats": {"type": "integer"}, "disabled": {"type": "boolean"}, "password": _STR},
            optional=("role", "display_name", "groups", "max_chats", "disabled", "password")),
            "parameters": [{"name": "name", "in": "path", "required": True, "schema": _STR}]}},
        "/api/agent/customers/{channel}/{user_id}": {
            "get": {**_op("A customer's profile across linked channels: name, channel ids, every ticket with its "
                          "outcome and rating, open follow-ups, attributes"), "parameters": _CUSTOMER},
            "patch": {**_op("Set the customer's name and attributes ({key: text}, null removes one)",
                            body={"name": _STR, "attributes": {"type": "object"}}, optional=("name", "attributes")),
                      "parameters": _CUSTOMER}},
        "/api/agent/customers/{channel}/{user_id}/link": {"post": {**_op(
            "Link another channel id of the same person (`identity`: channel:user_id) into this profile",
            body={"identity": _STR}), "parameters": _CUSTOMER}},
        "/api/agent/blocked": {"get": _op("The blocked customers, newest first, with who blocked them and why")},
        "/api/agent/blocked/{channel}/{user_id}": {"delete": {**_op("Unblock a customer (admins)"),
                                                              "parameters": _CUSTOMER}},
        "/api/agent/status": {"post": _op("Set your presence: online (gets new chats), busy (keeps chats), away",
                                          body={"status": {"type": "string", "enum": list(STATUSES)}})},
        "/api/agent/team": {"get": _op("Team lead view (admins): each agent's presence, load and open chats; "
                                       "first-response times, SLA breaches and CSAT over 7 days")},
        "/api/agent/resolved": {"get": {**_op("Closed conversations, newest first, filtered by a word (q), agent, "
                                              "wrap-up tag or category, customer, closing dates"),
                                        "parameters": [{"name": n, "in": "query", "required": False, "schema": _STR}
                                                       for n in ("q", "agent", "tag", "customer", "since", "until")]}},
        "/api/agent/canned": {"get": _op("Canned replies")},
        "/api/agent/ratings": {"get": _op("Recent satisfaction ratings and their average (admins)")},
        "/api/agent/tickets": {"get": _op("Inbox: waiting tickets in queue order, mine, others', reminders")},
        "/api/agent/tickets/{ticket_id}": {"get": _op(
            "Full context: transcript, reason, candidates, profile, earlier tickets, internal notes", ticket=True)},
        "/api/agent/tickets/{ticket_id}/export": {"get": _op(
            "The transcript as plain text (phone/ID numbers masked when security.mask_exports is on)", ticket=True)},
        "/api/agent/tickets/{ticket_id}/claim": {"post": _op("Claim a waiting ticket (one owner; 409 if taken)",
                                                             ticket=True)},
        "/api/agent/tickets/{ticket_id}/messages": {"post": _op(
            "Send a message to the customer on their channel (202 + `deferred` if the channel queued it "
            "for later, 502 if it refused it)",
            ticket=True, body={"text": _STR})},
        "/api/agent/tickets/{ticket_id}/typing": {"post": _op(
            "The agent is typing: the customer's web chat shows \"the agent is typing\" for a few seconds",
            ticket=True)},
        "/api/agent/tickets/{ticket_id}/notes": {"post": _op("Add an internal note (never sent to the customer)",
                                                             ticket=True, body={"text": _STR})},
        "/api/agent/tickets/{ticket_id}/transfer": {"post": _op(
            "Transfer to another agent (`to`) or back to the queue for a skill group (`group`)", ticket=True,
            body={"to": _STR, "group": _STR}, optional=("to", "group"))},
        "/api/agent/tickets/{ticket_id}/block": {"post": _op(
            "Block the ticket's customer (abuse): the ticket closes; the bot still answers them, no handoff "
            "reaches an agent until an admin unblocks", ticket=True, body={"reason": _STR})},
        "/api/agent/tickets/{ticket_id}/reassign": {"post": _op(
            "Give a waiting or claimed ticket to an agent (admins)", ticket=True, body={"to": _STR})},
        "/api/agent/tickets/{ticket_id}/resolve": {"post": {**_op(
            "Resolve with an optional wrap-up: back to the bot, and the customer is asked for a 1-5 rating",
            ticket=True, body={"wrapup": {"type": "object", "properties": {
                "category": _STR, "tags": {"type": "array", "items": _STR}, "outcome": _STR}}},
            optional=("wrapup",))}},
        "/api/agent/tickets/{ticket_id}/handback": {"post": _op("Hand back to the bot without a survey",
                                                                ticket=True)},
        "/api/agent/tickets/{ticket_id}/followups": {"post": _op(
            "Promise a follow-up: the agent is reminded after `minutes`", ticket=True,
            body={"minutes": {"type": "number"}, "text": _STR}, optional=("text",))},
        "/api/agent/tickets/{ticket_id}/wrong-answers": {"post": _op(
            "The bot's answer `seq` (a transcript line with `answer_entry`) was wrong: its question goes on the "
            "admin review list next to the entry used; `recorded` is false when it was marked before",
            ticket=True, body={"seq": {"type": "integer"}})},
        "/api/agent/events": {"get": {"summary": "Server-sent events: ticket, message, note, escalated, reminder, "
                                                 "rating, delivery_failed", "responses": {"200": {
                                                     "description": "text/event-stream",
                                                     "content": {"text/event-stream": {"schema": _STR}}}}}},
    },
}
