"""A stand-in for the WeChat (api.weixin.qq.com) and WeCom (qyapi.weixin.qq.com) APIs on loopback.

It behaves like the real thing where Kefu depends on it: tokens expire and a fresh fetch
invalidates the previous token (errcode 40001 for a stale one), sends are recorded, quota and
window errors can be injected, and ``kf/sync_msg`` pages through a message feed by cursor.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import fakeredis
import redis
import redis.asyncio as aioredis
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bot import keys
from bot.storage.client import connect
from tests.conftest import REDIS_URL


@dataclass
class StandIn:
    base_url: str = ""
    expires_in: int = 7200
    token_delay: float = 0.05  # a slow token endpoint widens any refresh race
    token_fetches: list[dict[str, str]] = field(default_factory=list)
    valid_tokens: set[str] = field(default_factory=set)
    custom_sent: list[dict[str, Any]] = field(default_factory=list)
    fail_next: list[int] = field(default_factory=list)  # errcodes returned by the next sends
    sends_down_until: float = 0.0  # time.monotonic() until which customer-service sends answer 502
    # WeCom 微信客服
    kf_messages: list[dict[str, Any]] = field(default_factory=list)  # the feed; cursor = index
    sync_calls: list[dict[str, Any]] = field(default_factory=list)
    kf_sent: list[dict[str, Any]] = field(default_factory=list)
    kf_event_sent: list[dict[str, Any]] = field(default_factory=list)
    service_state: dict[str, int] = field(default_factory=dict)
    trans_calls: list[dict[str, Any]] = field(default_factory=list)

    def _new_token(self, query: dict[str, str]) -> str:
        self.token_fetches.append(query)
        token = f"token-{len(self.token_fetches)}"
        self.valid_tokens = {token}  # like WeChat: a new token retires the old one
        return token

    async def token(self, request: Request) -> Response:
        await asyncio.sleep(self.token_delay)
        query = dict(request.query_params)
        if query.get("grant_type") != "client_credential" or not query.get("appid") or not query.get("secret"):
            return JSONResponse({"errcode": 40013, "errmsg": "invalid appid"})
        return JSONResponse({"access_token": self._new_token(query), "expires_in": self.expires_in})

    async def gettoken(self, request: Request) -> Response:
        await asyncio.sleep(self.token_delay)
        query = dict(request.query_params)
        if not query.get("corpid") or not query.get("corpsecret"):
            return JSONResponse({"errcode": 40013, "errmsg": "invalid corpid"})
        return JSONResponse({"errcode": 0, "errmsg": "ok", "access_token": self._new_token(query),
                             "expires_in": self.expires_in})

    def _authorised(self, request: Request) -> bool:
        return request.query_params.get("access_token", "") in self.valid_tokens

    async def _body(self, request: Request) -> dict[str, Any]:
        data: dict[str, Any] = await request.json()
        return data

    async def custom_send(self, request: Request) -> Response:
        if not self._authorised(request):
            return JSONResponse({"errcode": 40001, "errmsg": "invalid credential, access_token is invalid"})
        body = await self._body(request)
        if time.monotonic() < self.sends_down_until:
            return Response("Bad Gateway", status_code=502)
        if self.fail_next:
            code = self.fail_next.pop(0)
            return JSONResponse({"errcode": code, "errmsg": "response out of time limit or subscription is canceled"})
        self.custom_sent.append(body)
        return JSONResponse({"errcode": 0, "errmsg": "ok"})

    async def sync_msg(self, request: Request) -> Response:
        if not self._authorised(request):
            return JSONResponse({"errcode": 40014, "errmsg": "invalid access_token"})
        body = await self._body(request)
        self.sync_calls.append(body)
        start = int(body.get("cursor") or 0)
        limit = min(int(body.get("limit") or 1000), 1000)
        page = self.kf_messages[start:start + limit]
        end = start + len(page)
        return JSONResponse({"errcode": 0, "errmsg": "ok", "next_cursor": str(end),
                             "has_more": 1 if end < len(self.kf_messages) else 0, "msg_list": page})

    async def kf_send(self, request: Request) -> Response:
        if not self._authorised(request):
            return JSONResponse({"errcode": 40014, "errmsg": "invalid access_token"})
        body = await self._body(request)
        if self.fail_next:
            return JSONResponse({"errcode": self.fail_next.pop(0), "errmsg": "send msg count limit"})
        self.kf_sent.append(body)
        return JSONResponse({"errcode": 0, "errmsg": "ok", "msgid": f"sent-{len(self.kf_sent)}"})

    async def kf_send_on_event(self, request: Request) -> Response:
        if not self._authorised(request):
            return JSONResponse({"errcode": 40014, "errmsg": "invalid access_token"})
        self.kf_event_sent.append(await self._body(request))
        return JSONResponse({"errcode": 0, "errmsg": "ok"})

    async def state_get(self, request: Request) -> Response:
        if not self._authorised(request):
            return JSONResponse({"errcode": 40014, "errmsg": "invalid access_token"})
        body = await self._body(request)
        return JSONResponse({"errcode": 0, "errmsg": "ok",
                             "service_state": self.service_state.get(body["external_userid"], 0)})

    async def state_trans(self, request: Request) -> Response:
        if not self._authorised(request):
            return JSONResponse({"errcode": 40014, "errmsg": "invalid access_token"})
        body = await self._body(request)
        self.trans_calls.append(body)
        self.service_state[body["external_userid"]] = int(body["service_state"])
        return JSONResponse({"errcode": 0, "errmsg": "ok"})

    def app(self) -> Starlette:
        return Starlette(routes=[
            Route("/cgi-bin/token", self.token, methods=["GET"]),
            Route("/cgi-bin/message/custom/send", self.custom_send, methods=["POST"]),
            Route("/cgi-bin/gettoken", self.gettoken, methods=["GET"]),
            Route("/cgi-bin/kf/sync_msg", self.sync_msg, methods=["POST"]),
            Route("/cgi-bin/kf/send_msg", self.kf_send, methods=["POST"]),
            Route("/cgi-bin/kf/send_msg_on_event", self.kf_send_on_event, methods=["POST"]),
            Route("/cgi-bin/kf/service_state/get", self.state_get, methods=["POST"]),
            Route("/cgi-bin/kf/service_state/trans", self.state_trans, methods=["POST"]),
        ])


def wait_for(predicate: Any, timeout: float = 10.0) -> None:
    """Poll ``predicate`` until true (background deliveries run on the app's own loop)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.02)


@contextmanager
def serve() -> Iterator[StandIn]:
    """Run a fresh stand-in on a free loopback port in a thread."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    standin = StandIn(base_url=f"http://127.0.0.1:{port}/cgi-bin/")
    server = uvicorn.Server(uvicorn.Config(standin.app(), log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("stand-in WeChat API did not start")
        time.sleep(0.01)
    try:
        yield standin
    finally:
        server.should_exit = True
        thread.join(timeout=5)
        sock.close()


class Backend:
    """Where the app's Redis lives; every app built from one backend shares it (like workers)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.server = fakeredis.FakeServer()

    def client(self) -> aioredis.Redis:
        if self.kind == "memory":
            return fakeredis.FakeAsyncRedis(server=self.server, decode_responses=True)
        return connect(REDIS_URL)

    def clear(self) -> None:
        if self.kind == "redis":
            sync = redis.Redis.from_url(REDIS_URL)
            for key in sync.scan_iter(match=f"{keys.PREFIX}*", count=500):
                sync.delete(key)
            sync.close()
