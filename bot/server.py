"""Kefu's HTTP edge: the middleware, ``/healthz`` and the one translation of errors to HTTP.

Errors are translated here, in one place: :class:`BadRequest` → its 4xx, each
:class:`DomainError` and each knowledge error → the status in :data:`REFUSALS`, an unreachable
store → 503 with a polite message, anything else → 500 without internals.  The app itself is composed in :mod:`bot.app`.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bot import metrics
from bot.errors import (
    BadRequest,
    Conflict,
    DeliveryFailed,
    DomainError,
    Forbidden,
    Gone,
    InvalidInput,
    NotAuthenticated,
    NotFound,
    Overloaded,
    RateLimited,
    StoreUnavailable,
)
from bot.static_assets import content_security_policy
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


RETRY_AFTER_SECONDS = 3


async def _bad_request(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, BadRequest)
    log.warning("rejected %s %s: %s", request.method, request.url.path, exc)
    return JSONResponse({"error": str(exc)}, status_code=exc.status)


# The HTTP status of each refusal (the first class that matches wins): the services' domain
# errors (bot/errors.py) and the knowledge base's (knowledge/errors.py, below the bot layer).
REFUSALS: tuple[tuple[type[Exception], int], ...] = (
    (InvalidInput, 400), (NotAuthenticated, 401), (Forbidden, 403), (NotFound, 404), (Conflict, 409),
    (Gone, 410), (RateLimited, 429), (DeliveryFailed, 502), (Overloaded, 503),
    (ValidationFailed, 422), (EntryNotFound, 404), (VersionNotFound, 404), (VersionConflict, 409),
    (KnowledgeLocked, 409),
)


def status_of(exc: Exception) -> int:
    """The HTTP status of a refusal; an unlisted domain error is a 400, anything else a 500."""
    fallback = 400 if isinstance(exc, DomainError) else 500
    return next((status for kind, status in REFUSALS if isinstance(exc, kind)), fallback)


async def _refused(request: Request, exc: Exception) -> Response:
    """A service's refusal: ``{"error": message}`` like a :class:`BadRequest`; a knowledge error's
    body is its JSON (a field error names the field)."""
    log.warning("rejected %s %s: %s", request.method, request.url.path, exc)
    body = exc.to_json() if isinstance(exc, KnowledgeError) else {"error": str(exc)}
    return JSONResponse(body, status_code=status_of(exc))


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


def exception_handlers() -> dict[Any, Callable[[Request, Exception], Awaitable[Response]]]:
    """Every error handler of the app (for :class:`starlette.applications.Starlette`)."""
    return {BadRequest: _bad_request, DomainError: _refused, StoreUnavailable: _store_unavailable,
            **{kind: _refused for kind, _ in REFUSALS if issubclass(kind, KnowledgeError)},
            # a Redis call outside the store's own wrappers (logins, limits): 503 too
            RedisConnectionError: _store_unavailable, RedisTimeoutError: _store_unavailable,
            Exception: _unexpected}
