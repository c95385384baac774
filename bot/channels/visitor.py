"""Signed visitor tokens: the web chat's identity for a browser, issued by the server.

A token is ``<visitor id>.<HMAC-SHA256(secret, visitor id)>``: the id is random and chosen by the
server, the signature proves Kefu issued it.  So nobody can guess another visitor's id or make
one up to read someone else's conversation; whoever holds a token is that visitor (like a
session cookie: keep it in the browser, never in a URL).  The secret is
``channels.web.secret``, or, when that is empty, one made by the first worker and kept in the
store so every worker and every restart accepts the same tokens.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
from collections.abc import Sequence
from urllib.parse import urlsplit

from starlette.requests import Request

from bot.errors import BadRequest
from bot.storage.web import WebSessions

VISITOR_ID = re.compile(r"^v_[0-9a-f]{32}$")
TOKEN = re.compile(r"^(v_[0-9a-f]{32})\.([A-Za-z0-9_-]{43})$")


def _signature(secret: bytes, visitor_id: str) -> str:
    digest = hmac.new(secret, b"kefu-visitor:" + visitor_id.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


class VisitorTokens:
    """Issues and verifies visitor tokens; the secret is read once, lazily."""

    def __init__(self, sessions: WebSessions, secret: str = "") -> None:
        self.sessions = sessions
        self._secret = secret.encode() if secret else b""

    async def _key(self) -> bytes:
        if not self._secret:
            self._secret = (await self.sessions.visitor_secret()).encode()
        return self._secret

    async def issue(self) -> tuple[str, str]:
        """A new visitor: (visitor id, token)."""
        visitor_id = "v_" + secrets.token_hex(16)
        return visitor_id, f"{visitor_id}.{_signature(await self._key(), visitor_id)}"

    async def for_customer(self, customer_id: str) -> str:
        """The token of a customer the website vouched for: the same visitor on every device."""
        key = await self._key()
        visitor_id = "v_" + hmac.new(key, b"kefu-customer:" + customer_id.encode(), hashlib.sha256).hexdigest()[:32]
        return f"{visitor_id}.{_signature(key, visitor_id)}"

    async def verify(self, token: str) -> str | None:
        """The visitor id of a genuine token, else None."""
        match = TOKEN.match(token)
        if match is None:
            return None
        visitor_id, signature = match.groups()
        expected = _signature(await self._key(), visitor_id)
        return visitor_id if hmac.compare_digest(expected, signature) else None


SESSION = re.compile(r"^[A-Za-z0-9_-]{8,64}$")  # a client-chosen session id (JSON API, when allowed)


async def session_of(value: object, tokens: VisitorTokens, unsigned_sessions: bool) -> str:
    """The web conversation's session id for a visitor token (or, when allowed, a plain
    client-chosen id, which can never take the ``v_`` form of a signed visitor)."""
    if isinstance(value, str) and TOKEN.match(value):
        visitor_id = await tokens.verify(value)
        if visitor_id is None:
            raise BadRequest("the visitor token is not valid here; get a new one from POST /api/chat/visitor",
                             status=401)
        return visitor_id
    if unsigned_sessions and isinstance(value, str) and SESSION.match(value) and not value.startswith("v_"):
        return value
    if unsigned_sessions:
        raise BadRequest("'token' must be a visitor token from POST /api/chat/visitor (or 'session' 8-64 "
                         "characters of letters, digits, '-' or '_')")
    raise BadRequest("'token' must be a visitor token from POST /api/chat/visitor", status=401)


def check_origin(request: Request, allowed: Sequence[str]) -> None:
    """A browser request from another site is refused unless that site is one of the allowed
    origins (``channels.web.allowed_origins``): nobody else's page can drive the chat API."""
    origin = request.headers.get("origin")
    if origin is None or origin in allowed or "*" in allowed:
        return
    if urlsplit(origin).netloc == request.headers.get("host", ""):
        return  # the chat page (or the widget's frame) on Kefu's own origin
    raise BadRequest(f"origin {origin[:100]} is not in channels.web.allowed_origins", status=403)


def signed_customer(value: str, secret: str, now: float) -> tuple[str, str]:
    """(customer id, name) from the website's ``data-customer``: ``<payload>.<signature>``, the
    payload base64url JSON ``{"id", "name", "exp"}``, the signature base64url HMAC-SHA256 of the
    payload with ``channels.web.identity_secret``.  Anything else is one clear 400."""
    if not secret:
        raise BadRequest("'customer' is not accepted: channels.web.identity_secret is not set")
    payload, _, signature = value.partition(".")
    expected = base64.urlsafe_b64encode(hmac.new(secret.encode(), payload.encode(), hashlib.sha256).digest())
    if not signature or not hmac.compare_digest(expected.decode().rstrip("="), signature.rstrip("=")):
        raise BadRequest("'customer' is not signed with channels.web.identity_secret", status=401)
    try:
        data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (ValueError, UnicodeDecodeError):
        raise BadRequest("'customer' must be base64url JSON {\"id\", \"name\", \"exp\"} and its signature") from None
    if not isinstance(data, dict):
        raise BadRequest("'customer' must be base64url JSON {\"id\", \"name\", \"exp\"} and its signature")
    customer_id, name, expires = data.get("id"), data.get("name", ""), data.get("exp")
    if not isinstance(customer_id, str) or not 1 <= len(customer_id) <= 64 or not isinstance(name, str):
        raise BadRequest("'customer' needs an 'id' of 1-64 characters and a 'name' string")
    if not isinstance(expires, int | float) or isinstance(expires, bool) or expires < now:
        raise BadRequest("'customer' has expired ('exp' is in the past); sign it again", status=401)
    return customer_id, name.strip()[:32]
