"""WeCom 微信客服 channel: ``/webhooks/wecom`` callback → ``kf/sync_msg`` → ``kf/send_msg``.

WeCom does not put the customer's message in the callback: it only says "there is something
new" (event ``kf_msg_or_event`` with a short-lived ``Token``), and we pull the feed with
``kf/sync_msg`` from a cursor.  The cursor lives in Redis and is saved only after a page's
messages were handled, so a crash re-reads the page instead of losing it; message ids are
deduped, so re-reading never answers twice.  One worker at a time pulls a given account.

WeCom keeps its own session state (``kf/service_state``: 0 未处理, 1 智能助手, 2 待接入池,
3 人工接待, 4 已结束).  Kefu keeps it in step: the bot takes a new session (0 → 1) before it
answers, and a handoff moves the session to the waiting pool (→ 2).  While a WeCom servicer
is receiving the customer (3), the bot stays out of it.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import time
from collections.abc import Callable, Coroutine
from typing import Any

import httpx
from redis.exceptions import LockError
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from wechatpy.enterprise.crypto import PrpCrypto

from bot.channels.base import DeliveryDeferred
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
from bot.config import WeComConfig
from bot.errors import BadRequest
from bot.storage.conversations import Store
from bot.types import Attachment, ConversationState, InboundMessage, Reply
from handlers.texts import say

log = logging.getLogger(__name__)

CHANNEL = "wecom"
TIMESTAMP_WINDOW = 300
MAX_ATTEMPTS = 3  # a message that fails this often is logged and skipped, not retried forever
WINDOW_ERRORS = {95001: "quota_used"}  # 发送消息数量已达上限: wait for the customer to write

UNHANDLED, ASSISTANT, POOL, HUMAN, ENDED = 0, 1, 2, 3, 4  # kf/service_state values
ORIGIN_CUSTOMER, ORIGIN_SYSTEM, ORIGIN_SERVICER = 3, 4, 5


def kf_message(user: str, open_kfid: str, reply: Reply) -> dict[str, Any]:
    """A ``kf/send_msg`` body: a click menu when the reply offers choices, text otherwise."""
    body: dict[str, Any] = {"touser": user, "open_kfid": open_kfid}
    if reply.suggestions:
        head, tail = menu_parts(reply)
        body["msgtype"] = "msgmenu"
        body["msgmenu"] = {"head_content": head, "tail_content": tail, "list": [
            {"type": "click", "click": {"id": s.payload, "content": s.label}} for s in reply.suggestions]}
    else:
        body["msgtype"] = "text"
        body["text"] = {"content": reply.text}
    return body


class WeComChannel(WeChatFamilyChannel):
    name = CHANNEL
    window_errors = WINDOW_ERRORS

    def __init__(self, config: WeComConfig, engine: TurnHandler, store: Store,
                 http: httpx.AsyncClient | None = None, clock: Callable[[], float] = time.time) -> None:
        config.check()
        self.config = config
        self.redis = store.redis
        super().__init__(engine, store, config.api_base_url, http, clock)
        self.crypto = PrpCrypto(base64.b64decode(config.encoding_aes_key + "="))

    # --- API ----------------------------------------------------------------------------------

    async def _fetch_token(self, http: httpx.AsyncClient) -> tuple[str, int]:
        data = await request_json(http, "GET", self.api.base_url + "gettoken", params={
            "corpid": self.config.corp_id, "corpsecret": self.config.secret})
        if data.get("errcode") or not data.get("access_token"):
            raise ApiError(int(data.get("errcode") or -1), str(data.get("errmsg", "no access_token in answer")))
        return str(data["access_token"]), int(data.get("expires_in") or 7200)

    async def _open_kfid(self, user: str) -> str:
        return await self.state.customer_field(user, "kf_open_kfid") or self.config.open_kfid

    async def _send(self, user: str, reply: Reply) -> None:
        await self.api.post("kf/send_msg", kf_message(user, await self._open_kfid(user), reply))

    async def service_state(self, user: str, open_kfid: str) -> int:
        data = await self.api.post("kf/service_state/get", {"open_kfid": open_kfid, "external_userid": user})
        return int(data.get("service_state") or 0)

    async def _trans(self, user: str, open_kfid: str, state: int) -> None:
        try:
            await self.api.post("kf/service_state/trans", {
                "open_kfid": open_kfid, "external_userid": user, "service_state": state})
        except ApiError as exc:
            log.warning("WeCom: could not move %s to service state %d: %s", user, state, exc)

    # --- callback -----------------------------------------------------------------------------

    async def webhook(self, request: Request) -> Response:
        query = request.query_params
        timestamp, nonce = query.get("timestamp", ""), query.get("nonce", "")
        msg_signature = query.get("msg_signature", "")
        check_timestamp(timestamp, TIMESTAMP_WINDOW, self.clock())
        if request.method == "GET":  # URL verification: decrypt echostr and echo the plaintext
            echostr = query.get("echostr", "")
            check_signature(msg_signature, self.config.token, timestamp, nonce, echostr)
            return PlainTextResponse(self._decrypt(echostr))
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > MAX_XML_BYTES:
            raise BadRequest("XML body too large", status=413)
        outer = parse_xml(await request.body())
        encrypted = outer.get("Encrypt")
        if not isinstance(encrypted, str) or not encrypted:
            raise BadRequest("callback without <Encrypt>")
        check_signature(msg_signature, self.config.token, timestamp, nonce, encrypted)
        event = parse_xml(self._decrypt(encrypted))
        if event.get("MsgType") == "event" and event.get("Event") == "kf_msg_or_event":
            open_kfid = str(event.get("OpenKfId") or self.config.open_kfid)
            if self.config.open_kfid and open_kfid != self.config.open_kfid:
                log.info("WeCom: ignoring callback for another account %s", open_kfid)
            else:
                self._spawn(self._sync_or_hold(open_kfid, str(event.get("Token") or "")))
        return PlainTextResponse("success")

    def _decrypt(self, ciphertext: str) -> str:
        try:
            return str(self.crypto.decrypt(ciphertext, self.config.corp_id))
        except Exception:  # bad padding, another corp's id, not base64
            raise BadRequest("cannot decrypt callback", status=403) from None

    # --- pulling the feed ---------------------------------------------------------------------------

    async def sync(self, open_kfid: str, token: str = "") -> int:
        """Pull and handle everything after the saved cursor; returns how many messages were read."""
        lock = self.state.sync_lock(open_kfid, 300)
        if not await lock.acquire():
            log.warning("WeCom: another worker is still syncing %s", open_kfid)
            return 0
        read = 0
        try:
            cursor = await self.state.sync_cursor(open_kfid)
            while True:
                payload: dict[str, Any] = {"cursor": cursor, "limit": 1000, "open_kfid": open_kfid}
                if token:
                    payload["token"] = token
                page = await self.api.post("kf/sync_msg", payload)
                for item in page.get("msg_list") or []:
                    await self._handle_or_give_up(item)
                    read += 1
                cursor = str(page.get("next_cursor") or cursor)
                await self.state.save_sync_cursor(open_kfid, cursor)  # only after handling
                if not page.get("has_more"):
                    return read
        finally:
            try:
                await lock.release()
            except LockError:
                log.warning("WeCom sync lock for %s expired before release", open_kfid)

    async def _sync_or_hold(self, open_kfid: str, token: str) -> None:
        """Sync now; if the store is down, hold the sync until it is back (the messages wait
        behind the saved cursor, but WeCom will not call again until the customer writes)."""
        await self.held.now_or_held(f"wecom sync {open_kfid}", lambda: self.sync(open_kfid, token))

    async def _handle_or_give_up(self, item: dict[str, Any]) -> None:
        """Handle one message; a failure stops the page (the cursor stays, the page is read
        again next time) unless this message already failed ``MAX_ATTEMPTS`` times."""
        try:
            await self._handle(item)
        except Exception:
            msgid = str(item.get("msgid") or "")
            attempts = await self.state.count_failure(msgid)
            if attempts < MAX_ATTEMPTS:
                raise
            log.exception("WeCom: giving up on message %s after %d attempts", msgid, attempts)

    async def _handle(self, item: dict[str, Any]) -> None:
        origin = int(item.get("origin") or 0)
        msgtype = str(item.get("msgtype") or "")
        if msgtype == "event":
            await self._event(item)
            return
        if origin != ORIGIN_CUSTOMER:
            return  # a servicer's own message (5) or a system notice: nothing for the bot to answer
        user = str(item.get("external_userid") or "")
        open_kfid = str(item.get("open_kfid") or self.config.open_kfid)
        msgid = str(item.get("msgid") or "")
        if not user or not msgid:
            return
        state = await self._state_or_unknown(user, open_kfid)
        if state == HUMAN:
            log.info("WeCom: %s is with a WeCom servicer; the bot stays out", user)
            return
        await self.state.set_customer_field(user, "kf_open_kfid", open_kfid)
        await self.outbox.customer_wrote(user)
        msg = _inbound(item, msgtype, user, msgid, self.clock())
        menu_id = (item.get("text") or {}).get("menu_id") if msgtype == "text" else None
        if menu_id:  # a tapped click-menu item
            msg = menu_pick(msg, str(menu_id))
        result = await self.engine.handle(msg)
        if result.duplicate:
            return
        handed_off = result.conversation.state in (ConversationState.WAITING, ConversationState.AGENT)
        if not handed_off and state in (UNHANDLED, ENDED):
            await self._trans(user, open_kfid, ASSISTANT)  # the bot takes the session before answering
        try:
            await self.outbox.deliver(msg.conversation_id, user, result.replies)
        except DeliveryDeferred as exc:
            log.warning("WeCom answer to %s deferred: %s", msgid, exc)
        if handed_off and state not in (POOL, HUMAN):
            await self._trans(user, open_kfid, POOL)  # handoff: into WeCom's 待接入池

    async def _state_or_unknown(self, user: str, open_kfid: str) -> int:
        try:
            return await self.service_state(user, open_kfid)
        except ApiError as exc:
            log.warning("WeCom: service state of %s unknown: %s", user, exc)
            return -1

    async def _event(self, item: dict[str, Any]) -> None:
        event = item.get("event") or {}
        kind = str(event.get("event_type") or "")
        if kind == "enter_session" and event.get("welcome_code"):
            if not await self.store.first_time(f"event:{CHANNEL}", str(item.get("msgid") or event["welcome_code"])):
                return
            try:  # the welcome code is valid for 20 seconds and only works once
                await self.api.post("kf/send_msg_on_event", {
                    "code": event["welcome_code"], "msgtype": "text",
                    "text": {"content": say("welcome_subscribe", "zh")}})
            except ApiError as exc:
                log.warning("WeCom welcome message failed: %s", exc)
        elif kind == "msg_send_fail":
            log.error("WeCom could not deliver message %s to %s (fail_type %s)", event.get("fail_msgid"),
                      event.get("external_userid"), event.get("fail_type"))
        else:
            log.info("WeCom event %s for %s", kind, event.get("external_userid"))

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        task.add_done_callback(_log_failure)


def _inbound(item: dict[str, Any], msgtype: str, user: str, msgid: str, now: float) -> InboundMessage:
    text = ""
    attachments: tuple[Attachment, ...] = ()
    body = item.get(msgtype) or {}
    if msgtype == "text":
        text = str(body.get("content") or "")
    elif msgtype in ("image", "voice", "video", "file"):
        attachments = (Attachment(msgtype, str(body.get("media_id") or "")),)
    elif msgtype == "location":
        attachments = (Attachment("location", f"{body.get('latitude')},{body.get('longitude')}",
                                  str(body.get("name") or body.get("address") or "")),)
    elif msgtype == "link":
        attachments = (Attachment("link", str(body.get("url") or ""), str(body.get("title") or "")),)
    else:
        attachments = (Attachment(msgtype or "unknown", ""),)
    sent_at = float(item.get("send_time") or now)
    return InboundMessage(CHANNEL, user, user, text.strip()[:2000], msgid, sent_at, attachments)


def _log_failure(task: asyncio.Task[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("WeCom background task failed", exc_info=task.exception())
