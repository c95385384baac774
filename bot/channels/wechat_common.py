"""What the Official Account (公众号) and WeCom 微信客服 adapters share.

Both platforms sign callbacks the same way (sorted SHA-1 over token, timestamp, nonce and the
ciphertext), encrypt with the same AES scheme (wechatpy does the crypto), hand out an
``access_token`` that every worker must share, and only let a business write to a customer for a
while after the customer's last message, a few messages at a time.  Those rules live here once,
and so does the channel plumbing both adapters share (:class:`WeChatFamilyChannel`).

XML from the network is parsed defensively: no DOCTYPE, no entity declarations, bounded size —
a signed body is still attacker-shaped until proven otherwise (the signature does not cover a
plaintext-mode body at all).
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import hmac
import json
import logging
import re
import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Protocol

import httpx
import redis.asyncio as aioredis
import xmltodict
from redis.exceptions import LockError
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from bot.channels.base import DeliveryDeferred
from bot.channels.held import HeldWork, PlatformUnavailable, platform_retries
from bot.errors import BadRequest, KefuError
from bot.privacy import redact_secrets
from bot.storage.channels import ChannelState
from bot.storage.conversations import Store
from bot.storage.outbox import DeliveryWindows
from bot.types import Choice, Conversation, InboundMessage, Reply, TurnResult

log = logging.getLogger(__name__)

MAX_XML_BYTES = 64_000  # WeChat callbacks are a few hundred bytes; anything near this is not WeChat
WINDOW_SECONDS = 48 * 3600  # the customer-service window after the customer's last message
WINDOW_QUOTA = 5  # messages a business may send per customer message
_FORBIDDEN_XML = re.compile(rb"<!\s*(DOCTYPE|ENTITY|ELEMENT|ATTLIST|NOTATION)", re.IGNORECASE)
_CDATA = re.compile(rb"<!\[CDATA\[.*?\]\]>", re.DOTALL)  # customer text may contain anything
_TOKEN_ERRORS = {40001, 40014, 42001}  # token invalid/expired: fetch a new one and retry once


class ApiError(KefuError):
    """A WeChat/WeCom API call failed; ``errcode`` is the platform's (−1 for transport errors)."""

    def __init__(self, errcode: int, errmsg: str) -> None:
        super().__init__(f"errcode {errcode}: {errmsg}")
        self.errcode = errcode
        self.errmsg = errmsg


def parse_xml(body: bytes | str) -> dict[str, Any]:
    """Parse a WeChat XML document into a flat mapping, refusing anything that is not plain XML.

    DOCTYPE/ENTITY declarations are rejected before the parser sees them (billion laughs,
    external entities), and xmltodict's own entity guard stays on as a second wall.
    """
    data = body.encode("utf-8", "replace") if isinstance(body, str) else body
    if not data.strip():
        raise BadRequest("empty body")
    if len(data) > MAX_XML_BYTES:
        raise BadRequest("XML body too large", status=413)
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest("XML body must be UTF-8 (WeChat never sends UTF-16 or GBK)") from None
    if _FORBIDDEN_XML.search(_CDATA.sub(b"", data)):
        raise BadRequest("XML with DOCTYPE or entity declarations is not accepted")
    try:
        parsed = xmltodict.parse(data, disable_entities=True)
    except Exception:  # expat errors, our entity guard, anything malformed
        raise BadRequest("body is not well-formed XML") from None
    root = parsed.get("xml") if isinstance(parsed, dict) else None
    if not isinstance(root, dict):
        raise BadRequest("XML root element must be <xml>")
    return _checked_fields(root)


# Fields that are one text value in every WeChat/WeCom callback: a repeated element or one with
# children would reach wechatpy as a list/dict and Redis keys as "{'a': ...}".
SCALAR_FIELDS = frozenset({
    "ToUserName", "FromUserName", "CreateTime", "MsgType", "MsgId", "MsgID", "Content", "Event", "EventKey",
    "MediaId", "PicUrl", "Format", "Recognition", "ThumbMediaId", "Location_X", "Location_Y", "Scale", "Label",
    "Title", "Description", "Url", "Ticket", "Latitude", "Longitude", "Precision", "Encrypt", "AgentID",
    "Token", "OpenKfId", "bizmsgmenuid", "MsgDataId", "Idx",
})
_DIGITS = {"CreateTime": 11, "MsgId": 20, "MsgID": 20}  # field → most digits a real value has


def _checked_fields(root: dict[str, Any]) -> dict[str, Any]:
    """Refuse a callback whose fields are not what WeChat sends, naming the field (400)."""
    for name, value in root.items():
        if isinstance(value, list):
            raise BadRequest(f"XML element <{name}> appears more than once")
        if name in SCALAR_FIELDS and value is not None and not isinstance(value, str):
            raise BadRequest(f"XML element <{name}> must hold text, not child elements or attributes")
        if name in _DIGITS and value is not None and not (value.isascii() and value.isdigit()
                                                           and len(value) <= _DIGITS[name]):
            raise BadRequest(f"XML element <{name}> must be a number of at most {_DIGITS[name]} digits")
    return root


def signature(*parts: str) -> str:
    """WeChat's callback signature: SHA-1 of the sorted parts concatenated."""
    return hashlib.sha1("".join(sorted(parts)).encode("utf-8")).hexdigest()


def check_signature(given: str, *parts: str) -> None:
    """Constant-time comparison of ``given`` with the signature over ``parts``."""
    if not given or not hmac.compare_digest(signature(*parts).encode(), given.encode("utf-8", "replace")):
        raise BadRequest("signature mismatch", status=403)


def check_timestamp(raw: str, window: float, now: float) -> None:
    """Reject stale or future timestamps so a captured request cannot be replayed later."""
    try:
        stamp = int(raw)
    except (TypeError, ValueError):
        raise BadRequest("missing or malformed timestamp", status=403) from None
    if window and abs(now - stamp) > window:
        raise BadRequest("timestamp outside the accepted window", status=403)


def menu_parts(reply: Reply) -> tuple[str, str]:
    """Split a clarify reply into the menu's head line and tail, dropping the numbered lines
    that the menu items replace."""
    labels = {s.label for s in reply.suggestions}
    head: list[str] = []
    tail: list[str] = []
    seen_items = False
    for line in reply.text.splitlines():
        item = re.sub(r"^\s*\d+[.、)]\s*", "", line)
        if item != line and item.strip() in labels:
            seen_items = True
            continue
        (tail if seen_items else head).append(line)
    return "\n".join(head).strip(), "\n".join(tail).strip()


def menu_pick(msg: InboundMessage, menu_id: str) -> InboundMessage:
    """A tapped menu item (WeChat's ``bizmsgmenuid``, WeCom's ``menu_id``) as the message's typed
    choice; the text WeChat sends with it is the item's label.  The engine reads it as its number
    in the pending clarify ("2", which keeps the customer's language), or as the label when the
    menu is no longer current."""
    return dataclasses.replace(msg, choice=Choice(menu_id, msg.text))


TokenFetcher = Callable[[httpx.AsyncClient], Awaitable[tuple[str, int]]]


class AccessTokens:
    """One ``access_token`` for all workers: cached in Redis, fetched under a Redis lock.

    WeChat invalidates the previous token whenever a new one is fetched, so two workers racing
    to refresh would knock each other's token out; the lock plus a re-check after acquiring it
    makes exactly one fetch per expiry however many sends are in flight.  Tokens are treated as
    expired a little early (``margin``) so none is used in its last seconds.
    """

    def __init__(self, redis: aioredis.Redis, http: httpx.AsyncClient, channel: str, fetch: TokenFetcher,
                 clock: Callable[[], float] = time.time) -> None:
        self.redis = redis
        self.state = ChannelState(redis, channel)
        self.http = http
        self.channel = channel
        self.fetch = fetch
        self.clock = clock
        self._token = ""
        self._expires = 0.0
        self._local = asyncio.Lock()

    def _fresh(self, expires: float) -> bool:
        return expires > self.clock()

    async def _cached(self) -> tuple[str, float] | None:
        stored = await self.state.access_token()
        return stored if stored is not None and self._fresh(stored[1]) else None

    async def get(self) -> str:
        if self._token and self._fresh(self._expires):
            return self._token
        async with self._local:  # one coroutine per worker goes to Redis; the rest reuse its result
            if self._token and self._fresh(self._expires):
                return self._token
            deadline = time.monotonic() + 30
            while (cached := await self._cached()) is None:
                lock = self.state.access_token_lock(30)
                if await lock.acquire(blocking=False):
                    try:
                        cached = await self._cached() or await self._refresh()
                    finally:
                        try:
                            await lock.release()
                        except LockError:
                            log.warning("%s token lock expired before release", self.channel)
                    break
                if time.monotonic() > deadline:
                    raise ApiError(-1, "timed out waiting for another worker to fetch the access token")
                await asyncio.sleep(0.05)  # another worker is fetching: watch for its token
            self._token, self._expires = cached
            return self._token

    async def _refresh(self) -> tuple[str, float]:
        token, expires_in = await self.fetch(self.http)
        margin = min(300.0, expires_in / 5)
        expires = self.clock() + expires_in - margin
        await self.state.save_access_token(token, expires, max(1, int(expires_in)))
        log.info("%s access token refreshed (valid %ss)", self.channel, expires_in)
        return token, expires

    async def invalidate(self, token: str) -> None:
        """Drop ``token`` after the platform rejected it (only if nobody replaced it already)."""
        if self._token == token:
            self._token, self._expires = "", 0.0
        cached = await self._cached()
        if cached is not None and cached[0] == token:
            await self.state.drop_access_token()


class ApiClient:
    """The few JSON API calls Kefu makes, over an injected httpx client and a configurable base URL.

    wechatpy's own clients hard-code api.weixin.qq.com; we use wechatpy for signatures, crypto,
    parsing and replies, and httpx here so tests (and proxies) can point the base URL anywhere.
    """

    def __init__(self, http: httpx.AsyncClient, base_url: str, tokens: AccessTokens) -> None:
        self.http = http
        self.base_url = base_url if base_url.endswith("/") else base_url + "/"
        self.tokens = tokens

    async def post(self, path: str, payload: Mapping[str, Any]) -> dict[str, Any]:
        for attempt in (1, 2):
            token = await self.tokens.get()
            data = await request_json(self.http, "POST", self.base_url + path, params={"access_token": token},
                                      payload=payload)
            errcode = int(data.get("errcode") or 0)
            if errcode in _TOKEN_ERRORS and attempt == 1:
                log.warning("%s rejected the access token (%s); fetching a new one", path, errcode)
                await self.tokens.invalidate(token)
                continue
            if errcode:
                raise ApiError(errcode, str(data.get("errmsg", "")))
            return data
        raise AssertionError("unreachable")


async def request_json(http: httpx.AsyncClient, method: str, url: str, *, params: Mapping[str, str] | None = None,
                       payload: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """One HTTP call returning the JSON object; transport problems become ``ApiError(-1)``.

    Bodies are UTF-8 JSON without ``\\u`` escapes: WeChat shows escaped Chinese literally.
    """
    content = None if payload is None else json.dumps(payload, ensure_ascii=False).encode("utf-8")
    headers = {"content-type": "application/json; charset=utf-8"} if content is not None else None
    try:
        response = await http.request(method, url, params=params, content=content, headers=headers, timeout=10)
        response.raise_for_status()
        data = response.json()
    except (httpx.HTTPError, ValueError) as exc:
        # httpx's error text quotes the full URL, access_token included: never pass that on
        raise ApiError(-1, redact_secrets(f"{method} {url.split('?')[0]} failed: {exc}")) from exc
    if not isinstance(data, dict):
        raise ApiError(-1, "API answered with something other than a JSON object")
    return data


PASSING_ERROR = "api_error:-1"  # transport failure, 5xx or WeChat's "system busy": retrying can help


class Outbox:
    """The customer-service window (48 h, 5 messages per customer message) and the queue of
    replies waiting for it to reopen; state in Redis so every worker agrees."""

    def __init__(self, redis: aioredis.Redis, channel: str, send: Callable[[str, Reply], Awaitable[None]],
                 blocked: Callable[[ApiError], str | None], clock: Callable[[], float] = time.time,
                 window_seconds: float = WINDOW_SECONDS, quota: int = WINDOW_QUOTA,
                 retry: HeldWork | None = None) -> None:
        """``send(user_id, reply)`` performs one API call; ``blocked(error)`` maps an API error to
        "window_closed"/"quota_used" when the platform says the window is shut, else None.
        ``retry`` retries queues the API refused with a passing error (5xx, network, "system
        busy") until it takes them, instead of waiting for the customer to write."""
        self.redis = redis
        self.windows = DeliveryWindows(redis, channel)
        self.channel = channel
        self.send = send
        self.blocked = blocked
        self.clock = clock
        self.window_seconds = window_seconds
        self.quota = quota
        self.retry = retry

    async def customer_wrote(self, user_id: str) -> None:
        """The customer wrote: the window reopens with a fresh quota."""
        await self.windows.opened(user_id, self.clock())

    async def _reserve(self, user_id: str) -> str:
        return await self.windows.reserve(user_id, self.clock(), self.window_seconds, self.quota)

    async def _mark(self, user_id: str, reason: str) -> None:
        await self.windows.shut(user_id, reason, self.quota)

    async def _queue(self, conversation_id: str, user_id: str, replies: Sequence[Reply], reason: str,
                     front: bool = False) -> None:
        queued = await self.windows.hold(conversation_id, user_id, replies, reason, self.clock(), front)
        if queued:
            log.warning("%s: %d message(s) for %s queued (%s)", self.channel, queued, conversation_id, reason)

    async def _send_list(self, user_id: str, replies: Sequence[Reply]) -> tuple[int, str]:
        """Send in order until one cannot go; returns (how many were sent, why it stopped)."""
        for index, reply in enumerate(replies):
            reason = await self._reserve(user_id)
            if reason != "ok":
                return index, reason
            try:
                await self.send(user_id, reply)
            except ApiError as exc:
                shut = self.blocked(exc)
                if shut is not None:
                    await self._mark(user_id, shut)
                    return index, shut
                await self.windows.unreserve(user_id)
                log.error("%s: sending to %s failed: %s", self.channel, user_id, exc)
                return index, f"api_error:{exc.errcode}"
        return len(replies), ""

    async def deliver(self, conversation_id: str, user_id: str, replies: Sequence[Reply]) -> int:
        """Send queued replies first, then ``replies``; whatever cannot go now is queued in
        order and :class:`DeliveryDeferred` says why.  Returns how many messages went out."""
        async with self._locked(user_id):
            pending = await self._take(conversation_id)
            everything = [*pending, *replies]
            sent, reason = await self._send_list(user_id, everything)
            rest = everything[sent:]
            if rest:
                await self._queue(conversation_id, user_id, rest, reason, front=True)
        if rest and reason == PASSING_ERROR and self.retry is not None:
            self.retry.hold(f"{self.channel} outbox {conversation_id}", lambda: self._retry(conversation_id, user_id))
            raise DeliveryDeferred(reason, len(rest), until=f"the {self.channel} API answers again (retried by itself)")
        if rest:
            raise DeliveryDeferred(reason, len(rest))
        return sent

    async def _retry(self, conversation_id: str, user_id: str) -> None:
        """One more try at a queue the API refused; :class:`PlatformUnavailable` while it still does."""
        try:
            await self.deliver(conversation_id, user_id, ())
        except DeliveryDeferred as exc:
            if exc.reason == PASSING_ERROR:
                raise PlatformUnavailable(str(exc)) from exc
            log.warning("%s: outbox for %s now waits for the customer: %s", self.channel, conversation_id, exc)

    async def flush(self, conversation_id: str, user_id: str) -> int:
        """Deliver what waited for the customer to write again; returns how many went out."""
        if not await self.windows.held(conversation_id):
            return 0
        try:
            return await self.deliver(conversation_id, user_id, ())
        except DeliveryDeferred as exc:
            log.warning("%s: outbox for %s still blocked: %s", self.channel, conversation_id, exc)
            return 0

    async def _take(self, conversation_id: str) -> list[Reply]:
        return await self.windows.take(conversation_id)

    def _locked(self, user_id: str) -> Any:
        return self.windows.lock(user_id)


class TurnHandler(Protocol):
    """The part of :class:`bot.engine.Engine` a channel needs."""

    async def handle(self, msg: InboundMessage) -> TurnResult: ...


class WeChatFamilyChannel(ABC):
    """What the Official Account and WeCom channels have in common as channels: one shared
    access token and API client over an injected (or owned) httpx client, an outbox for the
    customer-service window, held work for a store outage, and the same stop and deliver.

    A subclass names itself (``name``, also its webhook path and Redis key part), says which
    API errors mean the window is shut, and provides the platform calls and the webhook."""

    name: str
    window_errors: Mapping[int, str]  # API errcode → "window_closed" / "quota_used"

    def __init__(self, engine: TurnHandler, store: Store, api_base_url: str, http: httpx.AsyncClient | None,
                 clock: Callable[[], float]) -> None:
        self.engine = engine
        self.store = store
        self.clock = clock
        self._own_http = http is None
        self.http = http or httpx.AsyncClient()
        self.tokens = AccessTokens(store.redis, self.http, self.name, self._fetch_token, clock)
        self.state = ChannelState(store.redis, self.name)  # reply memory, feed cursors
        self.api = ApiClient(self.http, api_base_url, self.tokens)
        self.unsent = platform_retries(f"{self.name} sends")
        self.outbox = Outbox(store.redis, self.name, self._send, lambda e: self.window_errors.get(e.errcode), clock,
                             retry=self.unsent)
        self._tasks: set[asyncio.Task[Any]] = set()
        self.held = HeldWork(self.name)

    @abstractmethod
    async def _fetch_token(self, http: httpx.AsyncClient) -> tuple[str, int]:
        """A new access token and its lifetime in seconds, from the platform."""

    @abstractmethod
    async def _send(self, user_id: str, reply: Reply) -> None:
        """One customer-service message to ``user_id`` (one API call)."""

    @abstractmethod
    async def webhook(self, request: Request) -> Response:
        """The platform's callback (GET: URL verification, POST: messages and events)."""

    # --- Channel protocol -------------------------------------------------------------------

    def routes(self) -> list[BaseRoute]:
        return [Route(f"/webhooks/{self.name}", self.webhook, methods=["GET", "POST"])]

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        """Let late answers in flight finish (briefly), then close what we own."""
        await self.held.stop()
        await self.unsent.stop()
        if self._tasks:
            _, pending = await asyncio.wait(set(self._tasks), timeout=5)
            for task in pending:
                task.cancel()
        if self._own_http:
            await self.http.aclose()

    async def deliver(self, conversation: Conversation, replies: Sequence[Reply]) -> None:
        """Send agent replies / late answers as customer-service messages.

        Raises :class:`DeliveryDeferred` when some had to wait in the outbox (window closed,
        quota used, API error); they go out when the customer writes again.
        """
        await self.outbox.deliver(conversation.id, conversation.user_id, replies)
