"""The web chat channel: the chat page at ``/``, the embeddable widget, and its JSON API.

Every browser is a visitor with a signed token (:mod:`bot.channels.visitor`); each visitor is
one conversation.  Every line of it (customer, bot, agent, system) has an ordered id (``seq``)
given by the store, and the page asks for "everything after N" with a long poll
(``GET /api/chat/messages?after=N``): after a reload, a reconnect, a server restart or in a
second tab it resumes from its last id, shows each message once, in order, and never depends on
the browser's clock.  A message is sent with its own id until the server accepts it; a resend
of a turn that is still running is told to retry, so nothing sent is lost or answered twice.
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import Callable, Sequence
from importlib import resources
from typing import Any
from urllib.parse import quote, unquote

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Route

from bot.channels.visitor import VisitorTokens, check_origin, session_of, signed_customer
from bot.config import SecurityConfig, WebChannelConfig
from bot.engine import Engine
from bot.errors import BadRequest
from bot.json_body import json_object
from bot.static_assets import content_security_policy, static_asset
from bot.storage.conversations import Store
from bot.types import Attachment, Choice, Conversation, InboundMessage, Reply, Role, TranscriptLine, TurnResult

CHANNEL = "web"
MAX_TEXT = 2000
MAX_ATTACHMENTS = 5
ATTACHMENT_ID = re.compile(r"^[0-9a-f]{32}$")
RETRY_SECONDS = 1
ASSETS = {"chat.js": "text/javascript; charset=utf-8", "chat.css": "text/css; charset=utf-8"}  # /chat/{asset}
WIDGET = {"widget.js": "text/javascript; charset=utf-8"}  # /widget.js, loaded by other sites
VISITOR_HEADER = "x-kefu-visitor"
ADMITTED_SECONDS = 86400  # a visitor token counted as a new chat is not counted again at its first message


def reply_json(reply: Reply) -> dict[str, Any]:
    return {"text": reply.text, "suggestions": [{"label": s.label, "payload": s.payload} for s in reply.suggestions]}


def turn_json(result: TurnResult) -> dict[str, Any]:
    decision = result.decision
    return {
        "replies": [reply_json(r) for r in result.replies],
        "state": result.conversation.state.value,
        "language": result.conversation.language,
        "duplicate": result.duplicate,
        "decision": None if decision is None else {
            "action": decision.action.value, "entry_id": decision.entry_id,
            "confidence": round(decision.confidence, 4), "reason": decision.reason,
        },
        "handoff": None if result.handoff is None else {
            "reason": result.handoff.reason, "detail": result.handoff.detail,
        },
    }


def lines_json(lines: Sequence[TranscriptLine], after: int) -> list[dict[str, Any]]:
    """What the customer sees of each line after ``after``; a bot answer (not a choice, a
    handoff or a note) is ``rateable`` with thumbs up/down."""
    shown = []
    previous: TranscriptLine | None = None
    for line in lines:
        if line.seq > after:
            item: dict[str, Any] = {"seq": line.seq, "role": line.role.value, "text": line.text, "at": line.at,
                                    "suggestions": line.meta.get("suggestions", [])}
            if line.role is Role.CUSTOMER:
                item["message_id"] = line.meta.get("message_id", "")
                item["attachments"] = [{"kind": a.get("kind", ""), "name": a.get("name", "")}
                                       for a in line.meta.get("attachments", [])]
            elif line.role is Role.AGENT:
                item["name"] = line.meta.get("agent_name", "")
            elif line.role is Role.BOT and previous is not None and previous.role is Role.CUSTOMER:
                decision = previous.meta.get("decision")
                item["rateable"] = isinstance(decision, dict) and decision.get("action") == "answer"
            shown.append(item)
        previous = line
    return shown


def _address(request: Request) -> str:
    """The client's address: the TCP peer, or X-Forwarded-For's when uvicorn trusts the proxy."""
    return request.client.host if request.client else "-"


class WebChannel:
    name = CHANNEL

    def __init__(self, engine: Engine, store: Store, config: WebChannelConfig | None = None,
                 security: SecurityConfig | None = None, clock: Callable[[], float] = time.time) -> None:
        self.engine = engine
        self.store = store
        self.config = config or WebChannelConfig()
        self.security = security or SecurityConfig()
        self.clock = clock
        self.tokens = VisitorTokens(store.web, self.config.secret)
        self._stopping = asyncio.Event()

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/", self.page, methods=["GET"]),
            Route("/chat/{asset}", self.asset, methods=["GET"]),
            Route("/widget.js", self.widget, methods=["GET"]),
            Route("/api/chat/visitor", self.visitor, methods=["POST"]),
            Route("/api/chat", self.chat, methods=["POST"]),
            Route("/api/chat/messages", self.messages, methods=["GET"]),
            Route("/api/chat/attachments", self.upload, methods=["POST"]),
            Route("/api/chat/attachments/{attachment_id}", self.download, methods=["GET"]),
            Route("/api/chat/{session}/messages", self.messages, methods=["GET"]),
        ]

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        self._stopping.set()  # open long polls answer now instead of holding the shutdown

    async def deliver(self, conversation: Conversation, replies: Sequence[Reply]) -> None:
        """Nothing to push: the page reads new transcript lines itself."""
        return None

    async def page(self, request: Request) -> Response:
        """The chat page; only Kefu itself and the allowed origins may frame it (the widget)."""
        html = resources.files("bot").joinpath("static/chat.html").read_text(encoding="utf-8")
        origins = self.config.allowed_origins
        ancestors = " ".join(["'self'", *(o for o in origins if o != "*")]) if origins else "'none'"
        if "*" in origins:
            ancestors = "*"
        headers = {"Content-Security-Policy": content_security_policy(ancestors)}  # the strict policy, own framing
        if not origins:  # no site embeds the widget: framing is refused as on every other page
            headers["X-Frame-Options"] = "DENY"
        return HTMLResponse(html, headers=headers)

    async def asset(self, request: Request) -> Response:
        """The page's script and style sheet: static files, so a strict CSP can forbid inline code."""
        return static_asset(request.path_params["asset"], ASSETS)

    async def widget(self, request: Request) -> Response:
        """The embed script other sites load (any site may load it; only allowed ones may frame the page)."""
        response = static_asset("widget.js", WIDGET)
        response.headers["Access-Control-Allow-Origin"] = "*"
        return response

    async def _session(self, value: object) -> str:
        return await session_of(value, self.tokens, self.config.unsigned_sessions)

    async def visitor(self, request: Request) -> Response:
        """A visitor token: the one sent if it is still valid (a returning browser), else a new
        one; for a customer the website signed (``customer``), that customer's own token."""
        check_origin(request, self.config.allowed_origins)
        body = await json_object(request, '{"token": "..."} or {}')
        customer = body.get("customer")
        if customer is not None:
            if not isinstance(customer, str) or len(customer) > 2000:
                raise BadRequest("'customer' must be the signed string from your website")
            customer_id, name = signed_customer(customer, self.config.identity_secret, time.time())
            token = await self.tokens.for_customer(customer_id)
            await self._admit(token.split(".")[0], _address(request))  # a new chat, unless they had one
            await self.store.set_visitor_name(token.split(".")[0], name or customer_id)
            return JSONResponse({"token": token, "new": body.get("token") != token, "name": name})
        old = body.get("token")
        if isinstance(old, str) and await self.tokens.verify(old) is not None:
            return JSONResponse({"token": old, "new": False})
        session, token = await self.tokens.issue()
        await self._admit(session, _address(request))
        return JSONResponse({"token": token, "new": True})

    async def chat(self, request: Request) -> Response:
        check_origin(request, self.config.allowed_origins)
        body = await json_object(request, '{"token": "...", "text": "...", "message_id": "..."}')
        session = await self._session(body.get("token", body.get("session")))
        text = body.get("text", "")
        attachments = await self._attachments(body.get("attachments"), session)
        if not isinstance(text, str) or not (text.strip() or attachments):
            raise BadRequest("'text' must be a non-empty string")
        if len(text) > MAX_TEXT:
            raise BadRequest(f"'text' is longer than {MAX_TEXT} characters", status=413)
        message_id = body.get("message_id") or uuid.uuid4().hex
        if not isinstance(message_id, str) or len(message_id) > 64:
            raise BadRequest("'message_id' must be a string of at most 64 characters")
        choice = _choice(body.get("choice"), text.strip())
        await self._admit(session, _address(request))
        vouched = await self.store.visitor_name(session) if session.startswith("v_") else ""
        msg = InboundMessage(CHANNEL, session, session, text.strip(), message_id, time.time(), attachments=attachments,
                             display_name=vouched or str(body.get("name") or "")[:64], choice=choice)
        result = await self.engine.handle(msg)
        if result.in_progress:  # the first copy is still being answered: come back for its result
            return JSONResponse({"error": "this message is still being answered; send it again",
                                 "retry": True, "in_progress": True, "duplicate": True, "replies": []},
                                status_code=409, headers={"Retry-After": str(RETRY_SECONDS)})
        body = turn_json(result)
        if result.duplicate:  # a resend whose first answer was lost on the way: answer it again
            body["replies"] = await self._earlier_replies(msg.conversation_id, message_id)
        return JSONResponse(body)

    async def _attachments(self, raw: object, session: str) -> tuple[Attachment, ...]:
        """The files named by ``raw`` ([{"ref": id}]), uploaded before by this same visitor."""
        if raw is None or raw == []:
            return ()
        if not isinstance(raw, list) or len(raw) > MAX_ATTACHMENTS or not all(isinstance(a, dict) for a in raw):
            raise BadRequest(f"'attachments' must be a list of at most {MAX_ATTACHMENTS} {{\"ref\": ...}} objects")
        found = []
        for item in raw:
            ref = item.get("ref")
            kept = await self.store.load_attachment(ref) if isinstance(ref, str) and ATTACHMENT_ID.match(ref) else None
            if kept is None or kept[0] != session:
                raise BadRequest("an attachment 'ref' must come from POST /api/chat/attachments", status=404)
            _, content_type, name, _ = kept
            kind = "photo" if content_type.startswith("image/") else "document"
            found.append(Attachment(kind, f"/api/chat/attachments/{ref}", name))
        return tuple(found)

    async def upload(self, request: Request) -> Response:
        """A picture or file for the agent: the body is the file, ``Content-Type`` its type."""
        check_origin(request, self.config.allowed_origins)
        session = await self._session(request.headers.get(VISITOR_HEADER))
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type not in self.config.attachment_types:
            raise BadRequest(f"files of type {content_type[:60] or '(none)'} are not accepted; send one of: "
                             f"{', '.join(self.config.attachment_types)}", status=415)
        limit = self.config.max_attachment_bytes
        data = b""
        async for chunk in request.stream():
            data += chunk
            if len(data) > limit:
                raise BadRequest(f"the file is larger than {limit // 1000} KB", status=413)
        if not data:
            raise BadRequest("the file is empty")
        name = unquote(request.headers.get("x-file-name", ""))[:120].strip() or "file"
        attachment_id = uuid.uuid4().hex
        await self.store.save_attachment(attachment_id, session, content_type, name, data)
        return JSONResponse({"ref": attachment_id, "name": name, "size": len(data)}, status_code=201)

    async def download(self, request: Request) -> Response:
        """The file behind an attachment link (an unguessable id), never rendered as a page."""
        attachment_id = request.path_params["attachment_id"]
        kept = await self.store.load_attachment(attachment_id) if ATTACHMENT_ID.match(attachment_id) else None
        if kept is None:
            raise BadRequest("no such attachment (or it has expired)", status=404)
        _, content_type, name, data = kept
        disposition = "inline" if content_type.startswith("image/") else "attachment"
        return Response(data, media_type=content_type, headers={
            "Content-Disposition": f"{disposition}; filename*=UTF-8''{quote(name)}",
            "X-Content-Type-Options": "nosniff", "Content-Security-Policy": "sandbox; default-src 'none'",
            "Cache-Control": "private, max-age=3600"})

    async def _admit(self, session: str, address: str) -> None:
        """429 when ``address`` (or everyone together) opened too many new chats this minute: 60
        scripted sessions must not fill the human queue ahead of real customers.  Counted once per
        session: when its visitor token is issued, or at its first message (an unsigned session)."""
        per_address = self.security.new_web_sessions_per_minute_per_address
        overall = self.security.new_web_sessions_per_minute
        if not per_address and not overall:
            return
        window = int(self.clock() // 60)
        if not await self.store.web.admit(f"{CHANNEL}:{session}", address, window, per_address or 2**31,
                                          overall or 2**31, ADMITTED_SECONDS):
            raise BadRequest("too many new chats from your network; please wait a minute / "
                             "新会话过多，请一分钟后再试", status=429)

    async def _earlier_replies(self, conversation_id: str, message_id: str) -> list[dict[str, Any]]:
        """The bot's lines that followed the customer's message ``message_id``."""
        conv = await self.store.load_conversation(conversation_id)
        lines = conv.transcript if conv is not None else ()
        start = next((i for i, line in enumerate(lines)
                      if line.role is Role.CUSTOMER and line.meta.get("message_id") == message_id), None)
        if start is None:
            return []
        replies = []
        for line in lines[start + 1:]:
            if line.role is not Role.BOT:
                break
            replies.append({"text": line.text, "suggestions": line.meta.get("suggestions", [])})
        return replies

    async def messages(self, request: Request) -> Response:
        """Every line after ``after`` (a seq), waiting up to ``wait`` seconds for one to come.

        ``last`` is the conversation's last seq: a client whose ``after`` is beyond it (the
        conversation expired and began again) starts over from 0."""
        check_origin(request, self.config.allowed_origins)
        if "session" in request.path_params:
            session = await self._session(request.path_params["session"])
        else:
            session = await self._session(request.headers.get(VISITOR_HEADER))
        after = _number(request.query_params.get("after", "0"), "after", int)
        wait = min(_number(request.query_params.get("wait", "0"), "wait", float), self.config.poll_seconds)
        was_typing = request.query_params.get("typing") == "1"
        conversation_id = f"{CHANNEL}:{session}"
        deadline = time.monotonic() + wait
        last, typing = await self.store.watch(conversation_id)
        pause = 0.1  # soon after a message the next one often follows; an idle page is checked each second
        while last == after and typing == was_typing and time.monotonic() < deadline and not self._stopping.is_set():
            if await request.is_disconnected():
                return Response(status_code=204)
            await asyncio.sleep(pause)
            pause = min(pause * 1.5, 1.0)
            last, typing = await self.store.watch(conversation_id)
        conv = await self.store.load_conversation(conversation_id)
        if conv is None:
            return JSONResponse({"messages": [], "last": 0, "state": "bot", "language": "", "typing": False})
        since = 0 if after > last else after
        return JSONResponse({"messages": lines_json(conv.transcript, since), "last": last,
                             "state": conv.state.value, "language": conv.language, "typing": typing})


def _number(raw: str, name: str, kind: type[int] | type[float]) -> Any:
    try:
        value = kind(raw)
    except ValueError:
        raise BadRequest(f"'{name}' must be a number") from None
    if not 0 <= value < 1e12:
        raise BadRequest(f"'{name}' must be a number from 0")
    return value


def _choice(raw: object, label: str) -> Choice | None:
    """A pressed suggestion: ``choice`` is its payload, ``text`` its label (what the page shows)."""
    if raw is None:
        return None
    if not isinstance(raw, str) or not raw or len(raw) > MAX_TEXT:
        raise BadRequest(f"'choice' must be a suggestion's payload: a string of 1 to {MAX_TEXT} characters")
    return Choice(raw, label)
