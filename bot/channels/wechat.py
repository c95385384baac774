"""WeChat Official Account (公众号) channel: the ``/webhooks/wechat`` callback.

WeChat's rules shape everything here:

* Every request is signed (``signature`` over token/timestamp/nonce; in safe and compatible
  mode also ``msg_signature`` over the ciphertext).  Forged, stale, oversized or DOCTYPE-bearing
  requests get a 4xx and are never processed.
* WeChat waits 5 seconds for an answer, then retries the same message up to 3 times.  If the
  engine's answer is ready within ``passive_reply_seconds`` it goes back in the HTTP response (a
  passive reply); otherwise we answer ``success`` at once and the finished turn is delivered
  later as a customer-service message (客服消息).  How the first delivery went is kept in Redis
  for a few minutes: a retry (on any worker) repeats the same passive reply — WeChat retries
  only when it did not take the first response — or answers ``success`` when the answer is
  going out as a customer-service message, so a customer never gets two answers or two turns.
* Customer-service messages are only allowed for 48 hours after the customer's last message and
  5 at a time (see :class:`~bot.channels.wechat_common.Outbox`); what cannot go waits in the
  outbox until the customer writes again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

import httpx
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from wechatpy import parse_message
from wechatpy.crypto import PrpCrypto, WeChatCrypto
from wechatpy.replies import TextReply

from bot.channels.base import DeliveryDeferred
from bot.channels.held import STORE_ERRORS
from bot.channels.wechat_common import (
    MAX_XML_BYTES,
    ApiError,
    TurnHandler,
    WeChatFamilyChannel,
    check_signature,
    check_timestamp,
    menu_parts,
    menu_pick,
    parse_xml,
    request_json,
)
from bot.config import WeChatConfig
from bot.errors import BadRequest, StoreUnavailable
from bot.storage.conversations import Store
from bot.types import Attachment, InboundMessage, Reply, TurnResult
from handlers.texts import say
from intents.language import detect_language

log = logging.getLogger(__name__)

CHANNEL = "wechat"
RETRY_MEMORY_SECONDS = 300  # WeChat's three retries arrive within ~15 s; keep the outcome well past that
WINDOW_ERRORS = {45015: "window_closed", 45047: "quota_used"}  # 回复时间超过限制 / 客服接口下行条数超过上限


def passive_text(replies: Sequence[Reply]) -> str:
    """A passive reply carries one message and no menu: texts joined, clarify options stay numbered."""
    return "\n\n".join(r.text for r in replies if r.text.strip())


def custom_message(openid: str, reply: Reply) -> dict[str, Any]:
    """A 客服消息 body: a ``msgmenu`` when the reply offers choices, plain text otherwise."""
    if reply.suggestions:
        head, tail = menu_parts(reply)
        return {"touser": openid, "msgtype": "msgmenu", "msgmenu": {
            "head_content": head,
            "list": [{"id": s.payload, "content": s.label} for s in reply.suggestions],
            "tail_content": tail,
        }}
    return {"touser": openid, "msgtype": "text", "text": {"content": reply.text}}


class WeChatChannel(WeChatFamilyChannel):
    name = CHANNEL
    window_errors = WINDOW_ERRORS

    def __init__(self, config: WeChatConfig, engine: TurnHandler, store: Store,
                 http: httpx.AsyncClient | None = None, clock: Callable[[], float] = time.time) -> None:
        config.check()
        self.config = config
        super().__init__(engine, store, config.api_base_url, http, clock)
        self.crypto = (WeChatCrypto(config.token, config.encoding_aes_key, config.app_id)
                       if config.encoding_aes_key else None)

    # --- WeChat API -------------------------------------------------------------------------

    async def _fetch_token(self, http: httpx.AsyncClient) -> tuple[str, int]:
        data = await request_json(http, "GET", self.api.base_url + "token", params={
            "grant_type": "client_credential", "appid": self.config.app_id, "secret": self.config.app_secret})
        if data.get("errcode") or not data.get("access_token"):
            raise ApiError(int(data.get("errcode") or -1), str(data.get("errmsg", "no access_token in answer")))
        return str(data["access_token"]), int(data.get("expires_in") or 7200)

    async def _send(self, openid: str, reply: Reply) -> None:
        await self.api.post("message/custom/send", custom_message(openid, reply))

    # --- webhook ------------------------------------------------------------------------------

    async def webhook(self, request: Request) -> Response:
        query = request.query_params
        timestamp, nonce = query.get("timestamp", ""), query.get("nonce", "")
        check_timestamp(timestamp, self.config.timestamp_window_seconds, self.clock())
        check_signature(query.get("signature", ""), self.config.token, timestamp, nonce)
        if request.method == "GET":  # 服务器配置 URL check: echo echostr (plain in every mode)
            return PlainTextResponse(query.get("echostr", ""))

        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > MAX_XML_BYTES:
            raise BadRequest("XML body too large", status=413)
        encrypted = query.get("encrypt_type", "raw").lower() == "aes"
        if self.crypto is not None and not encrypted:
            # With a key configured, only ciphertext is trusted: a plaintext body is not covered by
            # the signature, so a replayed query string could carry any message.
            raise BadRequest("unencrypted message, but encoding_aes_key is set (safe/compatible mode)", status=403)
        body = await request.body()
        outer = parse_xml(body)
        if encrypted:
            xml = self._decrypt(outer, query.get("msg_signature", ""), timestamp, nonce)
            fields = parse_xml(xml)
        else:
            xml, fields = body.decode("utf-8", "replace"), outer
        if not fields.get("MsgType") or not fields.get("FromUserName"):
            raise BadRequest("not a WeChat message: MsgType and FromUserName are required")
        message = parse_message(xml)
        try:  # while earlier messages are held, a new one queues behind them, in order
            text = self._hold(message) if len(self.held) and message.type != "event" else await self._answer(message)
        except STORE_ERRORS:  # WeChat will not bring this message back: hold it, answer later
            text = self._hold(message)
        if text is None:
            return PlainTextResponse("success")
        reply_xml = TextReply(source=message.target, target=message.source, content=text).render()
        if encrypted:
            assert self.crypto is not None
            reply_xml = self.crypto.encrypt_message(reply_xml, nonce, str(int(self.clock())))
        return Response(reply_xml, media_type="application/xml")

    def _decrypt(self, outer: dict[str, Any], msg_signature: str, timestamp: str, nonce: str) -> str:
        if self.crypto is None:
            raise BadRequest("encrypted message but channels.wechat.encoding_aes_key is not set")
        encrypted = outer.get("Encrypt")
        if not isinstance(encrypted, str) or not encrypted:
            raise BadRequest("encrypted message without <Encrypt>")
        check_signature(msg_signature, self.config.token, timestamp, nonce, encrypted)
        try:
            return str(PrpCrypto(self.crypto.key).decrypt(encrypted, self.config.app_id))
        except Exception:  # bad padding, wrong AppID, not base64: all mean "not from WeChat"
            raise BadRequest("cannot decrypt message", status=403) from None

    # --- turning WeChat messages into turns ------------------------------------------------------

    async def _answer(self, message: Any) -> str | None:
        """The passive reply text for ``message``, or None to answer ``success``."""
        openid = str(message.source)
        if message.type == "event":
            return await self._event(message, openid)
        inbound = await self._customer_wrote(message, openid)
        self._spawn(self.outbox.flush(inbound.conversation_id, openid))
        return await self._turn(inbound)

    async def _customer_wrote(self, message: Any, openid: str) -> InboundMessage:
        """The message as a turn's input (a tapped msgmenu item becomes its typed choice); the
        customer-service window reopens."""
        inbound = self._inbound(message, openid)
        menu_choice = message._data.get("bizmsgmenuid") if inbound.text else None
        if menu_choice:
            inbound = menu_pick(inbound, str(menu_choice))
        await self.outbox.customer_wrote(openid)
        return inbound

    def _hold(self, message: Any) -> str:
        """The store is down: keep the message for later and tell the customer; events (and a
        full queue) get the 503 instead."""
        if message.type == "event" or not self.held.hold(f"wechat message {message.id}", lambda: self._later(message)):
            raise StoreUnavailable("store unreachable while a WeChat message arrived")
        text = str(message.content or "") if message.type == "text" else ""
        return say("store_unavailable_held", detect_language(text, default="zh"))

    async def _later(self, message: Any) -> None:
        """A held message once the store answers: its turn, answered as customer-service messages."""
        inbound = await self._customer_wrote(message, str(message.source))
        await self._push(inbound.message_id, await self.engine.handle(inbound))

    def _inbound(self, message: Any, openid: str) -> InboundMessage:
        text = ""
        attachments: tuple[Attachment, ...] = ()
        kind = str(message.type)
        if kind == "text":
            text = str(message.content or "")
        elif kind == "image":
            attachments = (Attachment("image", str(message.media_id or ""), str(message.image or "")),)
        elif kind == "voice":
            text = str(message.recognition or "")  # WeChat's speech recognition, when switched on
            attachments = (Attachment("voice", str(message.media_id or ""), str(message.format or "")),)
        elif kind in ("video", "shortvideo"):
            attachments = (Attachment(kind, str(message.media_id or "")),)
        elif kind == "location":
            attachments = (Attachment("location", f"{message.location_x},{message.location_y}",
                                      str(message.label or "")),)
        elif kind == "link":
            attachments = (Attachment("link", str(message.url or ""), str(message.title or "")),)
        else:
            attachments = (Attachment(kind or "unknown", str(message._data.get("MediaId") or "")),)
        message_id = str(message.id or f"{openid}:{message.time}")
        return InboundMessage(CHANNEL, openid, openid, text.strip()[:2000], message_id,
                              float(message.time or self.clock()), attachments)

    async def _event(self, message: Any, openid: str) -> str | None:
        event = str(message.event or "").lower()
        if event == "unsubscribe":
            return None
        # Subscribing, scanning and menu clicks open the customer-service window too.
        await self.outbox.customer_wrote(openid)
        self._spawn(self.outbox.flush(f"{CHANNEL}:{openid}", openid))
        subscribed = event in ("subscribe", "subscribe_scan", "subscribe_scan_product")
        if subscribed and await self.store.first_time(f"event:{CHANNEL}", f"{openid}:{message.time}"):
            return say("welcome_subscribe", "zh")
        return None

    async def _turn(self, msg: InboundMessage) -> str | None:
        task = asyncio.ensure_future(self.engine.handle(msg))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        try:
            result = await asyncio.wait_for(asyncio.shield(task), self.config.passive_reply_seconds)
        except TimeoutError:
            await self._remember(msg.message_id, None)
            self._spawn(self._late(msg, task))
            return None
        if result.duplicate:
            return await self._retry(msg)
        text = passive_text(result.replies)
        await self._remember(msg.message_id, text)
        return text or None

    async def _remember(self, message_id: str, text: str | None) -> None:
        """Record how this message's answer goes out, for WeChat's retries of it."""
        await self.state.remember_reply(
            message_id, {"mode": "custom"} if text is None else {"mode": "passive", "text": text},
            RETRY_MEMORY_SECONDS)

    async def _retry(self, msg: InboundMessage) -> str | None:
        """A retry of a message another request owns: repeat its passive reply, or stay quiet
        while the owner is still deciding / delivering as a customer-service message."""
        deadline = time.monotonic() + self.config.passive_reply_seconds
        while True:
            data = await self.state.remembered_reply(msg.message_id)
            if data:
                log.info("WeChat retried %s; answering as the first delivery did (%s)", msg.message_id, data["mode"])
                if data["mode"] == "passive":
                    return str(data["text"]) or None
                return None
            if time.monotonic() >= deadline:
                return None
            await asyncio.sleep(0.05)

    async def _late(self, msg: InboundMessage, task: asyncio.Future[TurnResult]) -> None:
        try:
            result = await task
        except Exception:
            log.exception("WeChat turn for %s failed after the passive window", msg.message_id)
            return
        await self._push(msg.message_id, result)

    async def _push(self, message_id: str, result: TurnResult) -> None:
        """An answer that could not go back in the HTTP response, as customer-service messages."""
        if result.duplicate or not result.replies:
            return
        try:
            await self.deliver(result.conversation, result.replies)
        except DeliveryDeferred as exc:
            log.warning("answer to %s deferred: %s", message_id, exc)
        except Exception:
            log.exception("answer to %s could not be delivered", message_id)

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        task.add_done_callback(_log_failure)

    async def idle(self) -> None:
        """Wait for background deliveries (tests, graceful shutdown)."""
        while self._tasks:
            with contextlib.suppress(Exception):
                await asyncio.gather(*set(self._tasks), return_exceptions=True)


def _log_failure(task: asyncio.Task[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("WeChat background task failed", exc_info=task.exception())
