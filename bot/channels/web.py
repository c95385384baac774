"""The web chat channel: ``POST /api/chat`` and the try-it page at ``/``.

The browser keeps a random session id; each session is one conversation.  Replies that arrive
later (an agent's answer after a handoff) are read back from the transcript with
``GET /api/chat/{session}/messages``, so the page needs no socket.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable, Sequence
from importlib import resources
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Route

from bot import keys
from bot.config import SecurityConfig
from bot.engine import Engine
from bot.errors import BadRequest, StoreUnavailable
from bot.json_body import json_object
from bot.static_assets import static_asset
from bot.store import REDIS_ERRORS, Store
from bot.types import Conversation, InboundMessage, Reply, Role, TurnResult

CHANNEL = "web"
SESSION = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
MAX_TEXT = 2000
ASSETS = {"chat.js": "text/javascript; charset=utf-8", "chat.css": "text/css; charset=utf-8"}


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


# KEYS: the conversation, this address's and everyone's new-session counters.  ARGV: both limits.
# A known session passes; a new one is counted, or refused (1) when a limit is used up.
_ADMIT = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
if tonumber(redis.call('GET', KEYS[2]) or '0') >= tonumber(ARGV[1]) then return 1 end
if tonumber(redis.call('GET', KEYS[3]) or '0') >= tonumber(ARGV[2]) then return 1 end
for i = 2, 3 do redis.call('INCR', KEYS[i]); redis.call('EXPIRE', KEYS[i], 120) end
return 0
"""


class WebChannel:
    name = CHANNEL

    def __init__(self, engine: Engine, store: Store, security: SecurityConfig | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.engine = engine
        self.store = store
        self.security = security or SecurityConfig()
        self.clock = clock

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/", self.page, methods=["GET"]),
            Route("/chat/{asset}", self.asset, methods=["GET"]),
            Route("/api/chat", self.chat, methods=["POST"]),
            Route("/api/chat/{session}/messages", self.messages, methods=["GET"]),
        ]

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def deliver(self, conversation: Conversation, replies: Sequence[Reply]) -> None:
        """Nothing to push: the page reads new transcript lines itself."""
        return None

    async def page(self, request: Request) -> Response:
        html = resources.files("bot").joinpath("static/chat.html").read_text(encoding="utf-8")
        return HTMLResponse(html)

    async def asset(self, request: Request) -> Response:
        """The page's script and style sheet: static files, so a strict CSP can forbid inline code."""
        return static_asset(request.path_params["asset"], ASSETS)

    async def chat(self, request: Request) -> Response:
        body = await json_object(request, '{"session": "...", "text": "..."}')
        session = body.get("session")
        text = body.get("text")
        if not isinstance(session, str) or not SESSION.match(session):
            raise BadRequest("'session' must be 8-64 characters of letters, digits, '-' or '_'")
        if not isinstance(text, str) or not text.strip():
            raise BadRequest("'text' must be a non-empty string")
        if len(text) > MAX_TEXT:
            raise BadRequest(f"'text' is longer than {MAX_TEXT} characters", status=413)
        message_id = body.get("message_id") or uuid.uuid4().hex
        if not isinstance(message_id, str) or len(message_id) > 64:
            raise BadRequest("'message_id' must be a string of at most 64 characters")
        await self._admit(session, request.client.host if request.client else "-")
        msg = InboundMessage(CHANNEL, session, session, text.strip(), message_id, time.time(),
                             display_name=str(body.get("name") or "")[:64])
        result = await self.engine.handle(msg)
        body = turn_json(result)
        if result.duplicate:  # a resend whose first answer was lost on the way: answer it again
            body["replies"] = await self._earlier_replies(msg.conversation_id, message_id)
        return JSONResponse(body)

    async def _admit(self, session: str, address: str) -> None:
        """429 when ``address`` (or everyone together) opened too many new chats this minute: 60
        scripted sessions must not fill the human queue ahead of real customers."""
        per_address = self.security.new_web_sessions_per_minute_per_address
        overall = self.security.new_web_sessions_per_minute
        if not per_address and not overall:
            return
        window = int(self.clock() // 60)
        try:
            refused = await self.store.redis.eval(
                _ADMIT, 3, keys.conversation(f"{CHANNEL}:{session}"), keys.new_web_sessions(address, window),
                keys.new_web_sessions("all", window), per_address or 2**31, overall or 2**31)
        except REDIS_ERRORS as exc:  # 503 + retry, like the turn itself would
            raise StoreUnavailable(str(exc)) from exc
        if int(refused):
            raise BadRequest("too many new chats from your network; please wait a minute / "
                             "新会话过多，请一分钟后再试", status=429)

    async def _earlier_replies(self, conversation_id: str, message_id: str) -> list[dict[str, Any]]:
        """The bot's lines that followed the customer's message ``message_id`` (empty while that
        turn is still running elsewhere)."""
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
        session = request.path_params["session"]
        if not SESSION.match(session):
            raise BadRequest("unknown session", status=404)
        try:
            after = float(request.query_params.get("after", "0"))
        except ValueError:
            raise BadRequest("'after' must be a timestamp") from None
        conv = await self.store.load_conversation(f"{CHANNEL}:{session}")
        if conv is None:
            return JSONResponse({"messages": [], "state": "bot"})
        lines = [
            {"role": line.role.value, "text": line.text, "at": line.at,
             "suggestions": line.meta.get("suggestions", [])}
            for line in conv.transcript
            if line.at > after and line.role in (Role.AGENT, Role.SYSTEM)
        ]
        return JSONResponse({"messages": lines, "state": conv.state.value})
