"""Kefu's one ASGI app: web chat, webhooks under ``/webhooks/<channel>``, ``/healthz``.

Errors are translated here, in one place: :class:`BadRequest` → its 4xx, a domain error → its
status in ``DOMAIN_STATUS``, an unreachable store → 503 with a polite message, anything else →
500 without internals.
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bot import metrics
from bot.admin.console import AdminConsole, install
from bot.agents.console import AgentConsole
from bot.agents.desk import HumanDesk
from bot.channels.base import Channel
from bot.channels.web import WebChannel
from bot.config import Config, load_config
from bot.errors import BadRequest, StoreUnavailable
from bot.logs import configure_logging
from bot.ops import MetricsEndpoint, readyz
from bot.runtime import Runtime
from bot.static_assets import content_security_policy
from bot.workers import limit_blas_threads
from handlers.texts import say
from knowledge.errors import (
    EntryNotFound,
    KnowledgeError,
    KnowledgeLocked,
    ValidationFailed,
    VersionConflict,
    VersionNotFound,
)

log = logging.getLogger(__name__)

RuntimeFactory = Callable[[Config], Awaitable[Runtime]]


class BodyLimit:
    """Reject bodies over ``limit`` bytes with 413 before a handler reads them (``uploads``:
    paths that check a size limit of their own, e.g. web-chat attachments)."""

    def __init__(self, app: ASGIApp, limit: int, uploads: tuple[str, ...] = ()) -> None:
        self.app = app
        self.limit = limit
        self.uploads = uploads

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path") in self.uploads:
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await JSONResponse({"error": "request body too large"}, status_code=413)(scope, receive, send)
            return
        received = 0

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise BadRequest("request body too large", status=413)
            return message

        await self.app(scope, limited, send)


class ChatCors:
    """CORS for the customer-facing chat API only (``/api/chat…``, ``/api/feedback``), for the
    sites in ``channels.web.allowed_origins``; the consoles' APIs stay same-origin."""

    PATHS = ("/api/chat", "/api/feedback")

    def __init__(self, app: ASGIApp, origins: tuple[str, ...]) -> None:
        self.app = app
        self.cors = CORSMiddleware(app, allow_origins=list(origins), allow_methods=["GET", "POST"],
                                   allow_headers=["Content-Type", "X-Kefu-Visitor"], max_age=600)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and str(scope.get("path", "")).startswith(self.PATHS):
            await self.cors(scope, receive, send)
        else:
            await self.app(scope, receive, send)


class SecurityHeaders:
    """Strict headers on every response: a Content-Security-Policy without ``'unsafe-inline'``
    (pages load their script and style from ``bot/static``), ``nosniff`` and no referrer
    leaving the site.  Framing is refused everywhere except on the paths in
    ``frame_ancestors`` (path → CSP source list, e.g. the embeddable widget's allowed origins);
    a handler that sets its own ``Content-Security-Policy`` keeps it, framing decision included
    (no ``X-Frame-Options`` is added then: the chat page lets ``channels.web.allowed_origins``
    frame it)."""

    def __init__(self, app: ASGIApp, frame_ancestors: dict[str, str] | None = None) -> None:
        self.app = app
        self.frame_ancestors: dict[str, str] = dict(frame_ancestors or {})

    def headers_for(self, path: str) -> list[tuple[bytes, bytes]]:
        ancestors = self.frame_ancestors.get(path, "'none'")
        headers = [(b"content-security-policy", content_security_policy(ancestors).encode("latin-1")),
                   (b"x-content-type-options", b"nosniff"),
                   (b"referrer-policy", b"strict-origin-when-cross-origin")]
        if ancestors == "'none'":
            headers.append((b"x-frame-options", b"DENY"))
        return headers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = self.headers_for(scope.get("path", ""))

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                if b"content-security-policy" in present:  # the handler's own policy decides framing
                    present.add(b"x-frame-options")
                added = [(name, value) for name, value in extra if name not in present]
                message = {**message, "headers": [*message.get("headers", []), *added]}
            await send(message)

        await self.app(scope, receive, with_headers)


def build_channels(runtime: Runtime) -> list[Channel]:
    channels: list[Channel] = []
    config = runtime.config.channels
    if config.web.enabled:
        channels.append(WebChannel(runtime.engine, runtime.store, config.web, runtime.config.security))
    if config.telegram.enabled:
        from bot.channels.telegram import TelegramChannel  # PTB is imported only when used

        channels.append(TelegramChannel(config.telegram, runtime.engine, runtime.store))
    if config.wechat.enabled:
        from bot.channels.wechat import WeChatChannel

        channels.append(WeChatChannel(config.wechat, runtime.engine, runtime.store))
    if config.wecom.enabled:
        from bot.channels.wecom import WeComChannel

        channels.append(WeComChannel(config.wecom, runtime.engine, runtime.store))
    return channels


RETRY_AFTER_SECONDS = 3


async def _bad_request(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, BadRequest)
    log.warning("rejected %s %s: %s", request.method, request.url.path, exc)
    return JSONResponse({"error": str(exc)}, status_code=exc.status)


# Domain errors → HTTP status; an error's JSON (``to_json``) is its body (a field error names the field).
DOMAIN_STATUS: dict[type[Exception], int] = {
    ValidationFailed: 422, EntryNotFound: 404, VersionNotFound: 404, VersionConflict: 409, KnowledgeLocked: 409,
}


def status_of(exc: Exception) -> int:
    """The HTTP status of a domain error (its nearest mapped class), 500 for anything else."""
    return next((DOMAIN_STATUS[cls] for cls in type(exc).__mro__ if cls in DOMAIN_STATUS), 500)


async def _domain_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, KnowledgeError)
    log.warning("rejected %s %s: %s", request.method, request.url.path, exc)
    return JSONResponse(exc.to_json(), status_code=status_of(exc))


DOMAIN_HANDLERS = {cls: _domain_error for cls in DOMAIN_STATUS}


async def _store_unavailable(request: Request, exc: Exception) -> Response:
    """503 with Retry-After: platforms redeliver, and the web chat page resends the same message."""
    log.error("store unavailable during %s %s: %s", request.method, request.url.path, exc)
    metrics.redis_error("http")
    return JSONResponse({"error": "temporarily unavailable", "retry": True, "replies": [
        {"text": say("store_unavailable", "zh"), "suggestions": []}]}, status_code=503,
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)})


async def _unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error during %s %s", request.method, request.url.path, exc_info=exc)
    return JSONResponse({"error": "internal error"}, status_code=500)


CONFIG_ENV = "KEFU_CONFIG_FILE"


def app_from_environment() -> ASGIApp:
    """The app of one ``kefu serve --workers N`` worker process: uvicorn imports this factory
    in each process, and the parent passes the config file's path in the environment."""
    config = load_config(os.environ.get(CONFIG_ENV) or None)
    configure_logging(mask=config.security.mask_logs, fmt=config.logging.format)
    return create_app(config)


def create_app(config: Config, runtime_factory: RuntimeFactory | None = None,
               frame_ancestors: dict[str, str] | None = None) -> ASGIApp:
    """The ASGI app; the runtime (store, knowledge, channels) starts in the lifespan.
    ``frame_ancestors``: path → who may frame it (see :class:`SecurityHeaders`)."""
    factory = runtime_factory or (lambda cfg: Runtime.start(cfg))
    state: dict[str, object] = {}

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        limit_blas_threads()  # one BLAS thread per worker, next to its one-thread encoder
        metrics.configure(config.metrics.enabled)
        runtime = await factory(config)
        recorder = install(runtime)  # records unanswered questions and dashboard counters per turn
        channels = build_channels(runtime)
        for channel in channels:
            for route in channel.routes():
                app.router.routes.append(route)
            await channel.start()
        app.state.runtime = runtime
        app.state.channels = {c.name: c for c in channels}
        state["runtime"] = runtime
        console = AgentConsole(runtime.desk, app.state.channels) if isinstance(runtime.desk, HumanDesk) else None
        if console is not None:  # the agent console at /agent and its API under /api/agent
            app.router.routes.extend(console.routes())
            await console.start()
        admin = AdminConsole(runtime, console.api if console is not None else None, recorder)
        app.router.routes.extend(admin.routes())  # /admin and /api/admin; live knowledge reload
        await admin.start()
        try:
            yield
        finally:
            await admin.stop()
            if console is not None:
                await console.stop()
            for channel in channels:
                await channel.stop()
            await runtime.close()
            metrics.worker_exited(os.getpid())

    async def healthz(request: Request) -> Response:
        runtime: Runtime = request.app.state.runtime
        await runtime.store.ping()
        knowledge = runtime.knowledge
        return JSONResponse({"status": "ok", "store": "redis" if runtime.store.durable else "memory",
                             "knowledge_entries": len(knowledge.kb), "knowledge_version": knowledge.version,
                             "channels": sorted(request.app.state.channels), "worker_pid": os.getpid()})

    app = Starlette(
        routes=[Route("/healthz", healthz, methods=["GET"]), Route("/readyz", readyz, methods=["GET"]),
                *MetricsEndpoint(config.metrics).routes()],
        lifespan=lifespan,
        middleware=[Middleware(SecurityHeaders, frame_ancestors=frame_ancestors),
                    Middleware(ChatCors, origins=config.channels.web.allowed_origins)],
        exception_handlers={BadRequest: _bad_request, StoreUnavailable: _store_unavailable, **DOMAIN_HANDLERS,
                            # a Redis call outside the store's own wrappers (logins, limits): 503 too
                            RedisConnectionError: _store_unavailable, RedisTimeoutError: _store_unavailable,
                            Exception: _unexpected},
    )
    return BodyLimit(app, config.server.max_body_bytes, uploads=("/api/chat/attachments",))
