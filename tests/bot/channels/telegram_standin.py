"""A stand-in Telegram Bot API server on loopback, for the real python-telegram-bot to talk to.

It speaks the Bot API's HTTP shape (``POST {base}/bot{token}/{method}``, form or JSON
parameters, ``{"ok": ..., "result": ...}`` answers, errors with ``error_code`` and
``parameters.retry_after``) for the methods Kefu uses, records every call, and can be told to
misbehave: answer the next N ``sendMessage`` calls with 429 or 502, or refuse a chat with 403
(the customer blocked the bot).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import socket
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

TOKEN = "123456:TEST-token_for-kefu"
BOT_ID = 123456
BOT_USERNAME = "kefu_test_bot"
_JSON_FIELDS = {"reply_markup", "allowed_updates", "reply_parameters", "commands"}


@dataclass
class Call:
    method: str
    params: dict[str, Any]
    at: float = field(default_factory=time.monotonic)
    status: int = 200


def free_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


class Served:
    """Run an ASGI app with uvicorn in the current event loop on a free loopback port."""

    def __init__(self, app: Any) -> None:
        self.sock = free_socket()
        self.port = self.sock.getsockname()[1]
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on",
                                                    timeout_graceful_shutdown=2))
        self.task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def __aenter__(self) -> Served:
        self.task = asyncio.create_task(self.server.serve(sockets=[self.sock]))
        while not self.server.started:
            if self.task.done():
                self.task.result()  # raises why startup failed
                raise RuntimeError("server exited during startup")
            await asyncio.sleep(0.01)
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.server.should_exit = True
        assert self.task is not None
        await asyncio.wait_for(self.task, 15)
        self.sock.close()


class BotApiStandIn:
    def __init__(self, token: str = TOKEN) -> None:
        self.token = token
        self.calls: list[Call] = []
        self.failed: list[Call] = []  # calls answered with an error
        self._pending: list[tuple[dict[str, Any], bool]] = []  # (update, forced past the offset)
        self._arrived = asyncio.Event()
        self._sent = asyncio.Condition()
        self._update_ids = itertools.count(1000)
        self._message_ids = itertools.count(1)
        self.throttle_sends = 0  # answer this many sendMessage calls with 429
        self.retry_after = 1
        self.break_sends = 0  # answer this many sendMessage calls with 502
        self.sends_down_until = 0.0  # time.monotonic() until which sendMessage answers 502
        self.blocked_chats: set[int] = set()
        self.webhook: dict[str, Any] | None = None
        self.offsets: list[int] = []
        self._closing = False
        self.app = Starlette(routes=[Route("/bot{token}/{method}", self._endpoint, methods=["GET", "POST"])])
        self.served = Served(self.app)

    @property
    def base_url(self) -> str:
        return f"{self.served.url}/bot"

    async def __aenter__(self) -> BotApiStandIn:
        await self.served.__aenter__()
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._closing = True
        self._arrived.set()  # release a pending long poll
        await self.served.__aexit__()

    # --- what the tests see --------------------------------------------------------------

    def sent(self, chat_id: int | None = None) -> list[dict[str, Any]]:
        return [c.params for c in self.calls
                if c.method == "sendMessage" and (chat_id is None or int(c.params["chat_id"]) == chat_id)]

    def texts(self, chat_id: int | None = None) -> list[str]:
        return [str(p["text"]) for p in self.sent(chat_id)]

    def called(self, method: str) -> list[dict[str, Any]]:
        return [c.params for c in self.calls if c.method == method]

    async def wait_sent(self, count: int, timeout: float = 20.0) -> list[str]:
        """Wait until ``count`` messages have been sent (polling answers asynchronously)."""
        async def enough() -> None:
            async with self._sent:
                await self._sent.wait_for(lambda: len(self.sent()) >= count)
        await asyncio.wait_for(enough(), timeout)
        return self.texts()

    # --- what Telegram would send ----------------------------------------------------------

    def next_update_id(self) -> int:
        return next(self._update_ids)

    def message_update(self, text: str | None = None, *, chat_id: int = 42, user_id: int | None = None,
                       chat_type: str = "private", language: str = "zh-hans", update_id: int | None = None,
                       **extra: Any) -> dict[str, Any]:
        user = {"id": user_id or chat_id, "is_bot": False, "first_name": "小明", "language_code": language}
        chat: dict[str, Any] = {"id": chat_id, "type": chat_type}
        if chat_type == "private":
            chat["first_name"] = "小明"
        else:
            chat["title"] = "Test group"
        message: dict[str, Any] = {"message_id": next(self._message_ids), "date": int(time.time()),
                                   "chat": chat, "from": user, **extra}
        if text is not None:
            message["text"] = text
        return {"update_id": update_id or self.next_update_id(), "message": message}

    def button_update(self, sent: dict[str, Any], data: str, *, user_id: int | None = None) -> dict[str, Any]:
        """The customer pressed the button with ``data`` under a message the bot sent."""
        chat_id = int(sent["chat_id"])
        message = self._message_of(sent)
        return {"update_id": self.next_update_id(), "callback_query": {
            "id": f"cq{next(self._message_ids)}", "chat_instance": "ci",
            "from": {"id": user_id or chat_id, "is_bot": False, "first_name": "小明", "language_code": "zh-hans"},
            "message": message, "data": data}}

    def push(self, update: dict[str, Any], *, redeliver: bool = False) -> None:
        """Queue an update for getUpdates; ``redeliver`` serves it even behind the offset (a
        crash before the offset was confirmed)."""
        self._pending.append((update, redeliver))
        self._arrived.set()

    # --- the API -----------------------------------------------------------------------------

    async def _endpoint(self, request: Request) -> Response:
        if request.path_params["token"] != self.token:
            return JSONResponse({"ok": False, "error_code": 401, "description": "Unauthorized"}, status_code=401)
        method = request.path_params["method"]
        params = await self._params(request)
        handler = getattr(self, f"_api_{method}", None)
        call = Call(method, params)
        self.calls.append(call)
        if handler is None:
            return self._ok(True)
        response: Response = await handler(params)
        call.status = response.status_code
        if response.status_code != 200:
            self.calls.remove(call)
            self.failed.append(call)
        if method == "sendMessage":
            async with self._sent:
                self._sent.notify_all()
        return response

    @staticmethod
    async def _params(request: Request) -> dict[str, Any]:
        if request.headers.get("content-type", "").startswith("application/json"):
            body = await request.body()
            return dict(json.loads(body)) if body else {}
        # PTB posts url-encoded forms (multipart only for file uploads, which Kefu never makes)
        form = parse_qsl((await request.body()).decode("utf-8"), keep_blank_values=True)
        return {key: json.loads(value) if key in _JSON_FIELDS else value for key, value in form}

    @staticmethod
    def _ok(result: Any) -> JSONResponse:
        return JSONResponse({"ok": True, "result": result})

    @staticmethod
    def _error(status: int, description: str, **parameters: Any) -> JSONResponse:
        body: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
        if parameters:
            body["parameters"] = parameters
        return JSONResponse(body, status_code=status)

    def _bot_user(self) -> dict[str, Any]:
        return {"id": BOT_ID, "is_bot": True, "first_name": "Kefu", "username": BOT_USERNAME,
                "can_join_groups": True, "can_read_all_group_messages": False, "supports_inline_queries": False}

    def _message_of(self, params: dict[str, Any]) -> dict[str, Any]:
        chat_id = int(params["chat_id"])
        message = {"message_id": int(params.get("message_id") or next(self._message_ids)),
                   "date": int(time.time()),
                   "chat": {"id": chat_id, "type": "private" if chat_id > 0 else "supergroup"},
                   "from": self._bot_user(), "text": params.get("text", "")}
        if params.get("reply_markup"):
            message["reply_markup"] = params["reply_markup"]
        return message

    async def _api_getMe(self, params: dict[str, Any]) -> Response:
        return self._ok(self._bot_user())

    async def _api_getUpdates(self, params: dict[str, Any]) -> Response:
        offset = int(params.get("offset") or 0)
        self.offsets.append(offset)
        timeout = float(params.get("timeout") or 0)
        limit = int(params.get("limit") or 100)
        deadline = time.monotonic() + timeout
        while True:
            # confirmed (below the offset) updates are gone for good, as on Telegram
            self._pending = [(u, forced) for u, forced in self._pending if forced or u["update_id"] >= offset]
            ready = self._pending[:limit]
            if ready or self._closing or time.monotonic() >= deadline:
                break
            self._arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), max(0.0, deadline - time.monotonic()))
        self._pending = [(u, False) for u, _ in self._pending]  # a forced redelivery is served once
        served = [u for u, _ in ready]
        return self._ok(served)

    async def _api_setWebhook(self, params: dict[str, Any]) -> Response:
        self.webhook = params
        return self._ok(True)

    async def _api_deleteWebhook(self, params: dict[str, Any]) -> Response:
        self.webhook = None
        return self._ok(True)

    async def _api_sendMessage(self, params: dict[str, Any]) -> Response:
        chat_id = int(params["chat_id"])
        if self.throttle_sends > 0:
            self.throttle_sends -= 1
            return self._error(429, f"Too Many Requests: retry after {self.retry_after}",
                               retry_after=self.retry_after)
        if self.break_sends > 0 or time.monotonic() < self.sends_down_until:
            self.break_sends = max(0, self.break_sends - 1)
            return self._error(502, "Bad Gateway")
        if chat_id in self.blocked_chats:
            return self._error(403, "Forbidden: bot was blocked by the user")
        if len(str(params.get("text", ""))) > 4096:
            return self._error(400, "Bad Request: message is too long")
        return self._ok(self._message_of(params))

    async def _api_editMessageReplyMarkup(self, params: dict[str, Any]) -> Response:
        return self._ok(self._message_of(params))

    async def _api_answerCallbackQuery(self, params: dict[str, Any]) -> Response:
        return self._ok(True)
