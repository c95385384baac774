"""The Telegram channel, on python-telegram-bot (PTB) v22.

Two ways in, one way through: ``mode: polling`` lets PTB's updater long-poll ``getUpdates``
(quick start, no public URL); ``mode: webhook`` receives updates on ``POST /webhooks/telegram``
served by Kefu's own ASGI app (PTB's web server is never started), checked against the
``X-Telegram-Bot-Api-Secret-Token`` header.  Either way an :class:`~telegram.Update` becomes an
:class:`InboundMessage` here and nowhere else; replies go back through PTB's ``AIORateLimiter``
so flood limits and 429s are honoured.

Dedupe: the message id given to the engine is the ``update_id``, so an update Telegram
delivers twice (webhook retry, polling offset lost in a crash) is answered once.

Only ``message`` and ``callback_query`` updates are requested.  Edited messages are not: the
customer already has an answer to the first version, and answering again would be noise.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import re
import weakref
from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from telegram import (
    BotCommand,
    CallbackQuery,
    InlineKeyboardMarkup,
    Message,
    ReplyParameters,
    Update,
    User,
)
from telegram.constants import ChatType
from telegram.error import BadRequest as TelegramBadRequest
from telegram.error import Forbidden, InvalidToken, NetworkError, RetryAfter, TelegramError, TimedOut
from telegram.ext import Application, ApplicationBuilder, ContextTypes, TypeHandler

from bot.channels.base import DeliveryDeferred
from bot.channels.held import HeldWork, PlatformUnavailable, platform_retries
from bot.channels.telegram_schema import check_update
from bot.channels.telegram_send import (
    KefuRateLimiter,
    keyboard,
    payload_of,
    rating_of,
    split_text,
    with_rating,
    without_rating,
)
from bot.config import TelegramConfig
from bot.errors import BadRequest, ConfigError, DomainError, KefuError
from bot.json_body import parse_json
from bot.review import AnswerReview
from bot.types import Action, Attachment, Choice, Conversation, InboundMessage, Reply
from handlers.texts import say

if TYPE_CHECKING:
    from bot.engine import Engine
    from bot.storage.conversations import Store

log = logging.getLogger(__name__)

CHANNEL = "telegram"
WEBHOOK_PATH = "/webhooks/telegram"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
ALLOWED_UPDATES = ("message", "callback_query")
_COMMAND = re.compile(r"^/([A-Za-z0-9_]{1,32})(?:@([A-Za-z0-9_]{3,64}))?$")
# What /human says on the customer's behalf, so the engine records an ordinary human request.
HUMAN_REQUEST = {"zh": "转人工", "en": "I want to talk to a human agent"}
# Non-text content kept in the transcript for the agent: message attribute → attachment kind.
_FILE_KINDS = ("document", "video", "voice", "audio", "animation", "video_note", "sticker")
_START_RETRY_SECONDS = (1.0, 2.0, 5.0, 10.0, 30.0)

PTBApplication = Application[Any, Any, Any, Any, Any, Any]


class DeliveryError(KefuError):
    """A message outside a turn (an agent's reply) did not reach the Telegram customer."""


def check_config(config: TelegramConfig) -> None:
    """Fail at start, naming the key, rather than at the first update (rules: :mod:`bot.config`)."""
    config.check()


def file_url_for(config: TelegramConfig) -> str:
    """``base_file_url``, or the file endpoint beside ``base_url`` (…/bot → …/file/bot)."""
    if config.base_file_url:
        return config.base_file_url
    if config.base_url.endswith("/bot"):
        return config.base_url[: -len("bot")] + "file/bot"
    return config.base_url.rstrip("/") + "/file/bot"


def language_of(user: User | None) -> str:
    """The customer's language from their Telegram app (used before the conversation has one)."""
    code = (user.language_code if user else None) or ""
    if not code or code.lower().startswith("zh"):
        return "zh"
    return "en"


def attachments_of(message: Message) -> tuple[Attachment, ...]:
    """Photos, files and the like as opaque ``file_id`` references an agent can fetch."""
    if message.photo:
        largest = max(message.photo, key=lambda size: size.width * size.height)
        return (Attachment("photo", largest.file_id),)
    for kind in _FILE_KINDS:
        media = getattr(message, kind, None)
        if media is not None:
            name = getattr(media, "file_name", None) or getattr(media, "emoji", None) or ""
            return (Attachment(kind, media.file_id, name),)
    if message.location is not None:
        return (Attachment("location", f"{message.location.latitude},{message.location.longitude}"),)
    return ()


class TelegramChannel:
    name = CHANNEL

    def __init__(self, config: TelegramConfig, engine: Engine, store: Store) -> None:
        check_config(config)
        self.config = config
        self.engine = engine
        self.store = store
        self.review = AnswerReview(store)
        builder = (
            ApplicationBuilder()
            .token(config.token)
            .base_url(config.base_url)
            .base_file_url(file_url_for(config))
            .rate_limiter(KefuRateLimiter(config.max_retries, config.network_retries))
            .concurrent_updates(False)  # one update at a time: a chat's messages stay in order
        )
        if config.mode == "webhook":
            builder = builder.updater(None)
        self.app: PTBApplication = builder.build()
        self.app.add_handler(TypeHandler(Update, self._on_polled_update))
        self.app.add_error_handler(self._on_error)
        self._ready = asyncio.Event()
        self.held = HeldWork("telegram")
        self.unsent = platform_retries("telegram sends")
        self._held_sends = 0
        self._bot_id: int | None = None
        self._username = config.bot_username.lstrip("@")
        self._starter: asyncio.Task[None] | None = None
        self._chat_locks: weakref.WeakValueDictionary[int, asyncio.Lock] = weakref.WeakValueDictionary()

    # --- lifecycle -------------------------------------------------------------------------

    def routes(self) -> list[BaseRoute]:
        if self.config.mode != "webhook":
            return []
        return [Route(WEBHOOK_PATH, self.webhook, methods=["POST"])]

    async def start(self) -> None:
        """Connect once now (a rejected token is a configuration error); if Telegram is
        unreachable, keep trying in the background so the rest of Kefu still starts."""
        try:
            await self._connect()
        except NetworkError as exc:
            log.error("telegram unreachable at start (%s); retrying in the background", exc)
            self._starter = asyncio.create_task(self._connect_later())

    async def _connect_later(self) -> None:
        for attempt in range(10**9):
            await asyncio.sleep(_START_RETRY_SECONDS[min(attempt, len(_START_RETRY_SECONDS) - 1)])
            try:
                await self._connect()
                return
            except NetworkError as exc:
                log.warning("telegram still unreachable: %s", exc)
            except ConfigError as exc:
                log.error("%s", exc)
                return

    async def _connect(self) -> None:
        try:
            await self.app.initialize()  # getMe: checks the token, learns the bot's username
        except InvalidToken as exc:
            raise ConfigError(f"channels.telegram.token: Telegram rejected the token ({exc})") from exc
        self._bot_id = self.app.bot.id
        self._username = self._username or self.app.bot.username
        await self._set_commands()
        if self.config.mode == "webhook":
            await self.app.bot.set_webhook(self.config.webhook_url, secret_token=self.config.webhook_secret,
                                           allowed_updates=list(ALLOWED_UPDATES))
            log.info("telegram webhook set to %s", self.config.webhook_url)
        else:
            assert self.app.updater is not None
            await self.app.updater.start_polling(
                timeout=timedelta(seconds=self.config.poll_timeout_seconds),
                allowed_updates=list(ALLOWED_UPDATES),
                bootstrap_retries=3,
                error_callback=self._on_polling_error,
            )
            await self.app.start()
            log.info("telegram polling started as @%s", self._username)
        self._ready.set()

    async def _set_commands(self) -> None:
        """The command menu in the customer's app, in Chinese and English."""
        commands = {
            "zh": [("start", "开始"), ("help", "使用说明"), ("human", "转人工客服")],
            "en": [("start", "Start"), ("help", "How this works"), ("human", "Talk to a person")],
        }
        try:
            await self.app.bot.set_my_commands([BotCommand(c, d) for c, d in commands["zh"]])
            await self.app.bot.set_my_commands([BotCommand(c, d) for c, d in commands["en"]], language_code="en")
        except TelegramError as exc:  # cosmetic: never block the start on it
            log.warning("could not set the telegram command menu: %s", exc)

    def not_ready(self) -> str:
        """For ``/readyz``: '' once the webhook is set / the poller runs."""
        if not self._ready.is_set():
            return f"telegram {self.config.mode}: not connected to Telegram yet (webhook not set / poller not started)"
        if self.config.mode == "polling" and (self.app.updater is None or not self.app.updater.running):
            return "telegram polling: the poller is not running"
        return ""

    async def stop(self) -> None:
        if self._starter is not None:
            self._starter.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._starter
        if self.app.updater is not None and self.app.updater.running:
            await self.app.updater.stop()
        await self.held.stop()  # while the bot can still send
        await self.unsent.stop()
        if self.app.running:
            await self.app.stop()
        await self.app.shutdown()
        self._ready.clear()

    # --- inbound ---------------------------------------------------------------------------

    async def webhook(self, request: Request) -> Response:
        secret = request.headers.get(SECRET_HEADER, "")
        if not hmac.compare_digest(secret.encode("utf-8"), self.config.webhook_secret.encode("utf-8")):
            raise BadRequest("missing or wrong secret token", status=403)
        if not self._ready.is_set():
            raise BadRequest("telegram channel is still starting", status=503)  # Telegram retries
        data = parse_json(await request.body())  # bounded nesting, no lone surrogates
        try:
            check_update(data)
            update = Update.de_json(data, self.app.bot)
        except (ValueError, TypeError, KeyError, AttributeError, OverflowError, OSError) as exc:
            raise BadRequest(f"not a Telegram update: {exc}") from None
        await self.handle_update(update)  # StoreUnavailable → 503: Telegram redelivers later
        return JSONResponse({})

    async def _on_polled_update(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Polling has already moved past this update: if the store is down, hold the update
        until it is back, and tell the customer their message arrived."""
        if await self.held.now_or_held(f"telegram update {update.update_id}", lambda: self.handle_update(update)):
            return
        chat = update.effective_chat
        if chat is not None:
            await self._reply(chat.id, [Reply(say("store_unavailable_held", language_of(update.effective_user)))])

    async def _on_error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        log.error("telegram update %s failed", getattr(update, "update_id", "?"), exc_info=context.error)

    def _on_polling_error(self, exc: TelegramError) -> None:
        log.warning("telegram polling error (retrying): %s", exc)

    async def handle_update(self, update: Update) -> None:
        """One update → at most one engine turn and its replies, in order per chat."""
        if update.callback_query is not None:
            await self._on_button(update, update.callback_query)
        elif update.message is not None:
            await self._on_message(update, update.message)

    async def _on_message(self, update: Update, message: Message) -> None:
        chat = message.chat
        text = (message.text or message.caption or "").strip()
        private = chat.type == ChatType.PRIVATE
        if not private:
            addressed, text = self._addressed(message, text)
            if not addressed:
                return
        attachments = attachments_of(message)
        if not text and not attachments and message.effective_attachment is None:
            return  # service message (member joined, pinned...): nothing the customer said
        user = message.from_user
        reply_to = None if private else message.message_id
        command = _COMMAND.match(text.split(maxsplit=1)[0]) if text.startswith("/") else None
        if command is not None:
            name = command.group(1).lower()
            if name != "human":
                await self._local_reply(update, chat.id, "telegram_start" if name == "start" else "telegram_help",
                                        user, reply_to)
                return
            text = HUMAN_REQUEST[await self._language(chat.id, user)]
        msg = InboundMessage(
            CHANNEL,
            str(user.id if user else chat.id),
            str(chat.id),
            text,
            str(update.update_id),
            message.date.timestamp(),
            attachments=attachments,
            display_name=((user.full_name if user else chat.effective_name) or "")[:64],
        )
        await self._turn(msg, chat.id, reply_to)

    def _addressed(self, message: Message, text: str) -> tuple[bool, str]:
        """In a group, answer only a mention, a reply to the bot or ``/command@bot``; the
        mention itself is not part of the question."""
        username, bot_id = self._username, self._bot_id
        addressed = False
        replied = message.reply_to_message
        if replied is not None and replied.from_user is not None and replied.from_user.id == bot_id:
            addressed = True
        for entity in message.entities or message.caption_entities or ():
            if entity.type == "text_mention" and entity.user is not None and entity.user.id == bot_id:
                addressed = True
        if username:
            command = _COMMAND.match(text.split(maxsplit=1)[0]) if text.startswith("/") else None
            if command is not None and (command.group(2) or "").lower() == username.lower():
                return True, text
            mention = re.compile(rf"@{re.escape(username)}\b", re.IGNORECASE)
            if mention.search(text):
                addressed = True
                text = re.sub(r"\s+", " ", mention.sub(" ", text)).strip()
        return addressed, text

    async def _on_button(self, update: Update, query: CallbackQuery) -> None:
        """Stop the spinner, remove the buttons (a choice is made once) and take the choice
        as the customer's next message; a 👍/👎 under an answer is a verdict, not a message."""
        rating = rating_of(query.data or "")
        if rating is not None:
            await self._on_rating(query, *rating)
            return
        with contextlib.suppress(TelegramError):
            await query.answer()
        message = query.message
        chat_id = message.chat.id if message is not None else query.from_user.id
        label = ""
        if isinstance(message, Message):
            label = _button_label(message.reply_markup, query.data or "")
            try:
                await self.app.bot.edit_message_reply_markup(chat_id, message.message_id, reply_markup=None)
            except TelegramError as exc:
                log.info("could not remove the keyboard in chat %s: %s", chat_id, exc)
        choice = pressed(await payload_of(self.store, query.data or ""), label)
        if choice is None:
            return
        user = query.from_user
        msg = InboundMessage(CHANNEL, str(user.id), str(chat_id), choice.label or choice.payload, str(update.update_id),
                             display_name=(user.full_name or "")[:64], choice=choice)
        await self._turn(msg, chat_id, None)

    async def _on_rating(self, query: CallbackQuery, message_id: str, helpful: bool) -> None:
        """Record the verdict (a 👎 puts the question on the admin review list), thank the
        customer in a notice and take the rating row away; other buttons stay."""
        message = query.message
        chat_id = message.chat.id if message is not None else query.from_user.id
        conversation = await self.store.load_conversation(f"{CHANNEL}:{chat_id}")
        language = conversation.language if conversation is not None else language_of(query.from_user)
        try:
            await self.review.judge(conversation, helpful, message_id=message_id)
        except DomainError as exc:  # an answer this chat no longer has (expired): nothing to record
            log.info("telegram rating in chat %s not recorded: %s", chat_id, exc)
        with contextlib.suppress(TelegramError):
            await query.answer(say("telegram_rated" if helpful else "telegram_rated_wrong", language))
        if isinstance(message, Message):
            try:
                await self.app.bot.edit_message_reply_markup(chat_id, message.message_id,
                                                             reply_markup=without_rating(message.reply_markup))
            except TelegramError as exc:
                log.info("could not remove the rating buttons in chat %s: %s", chat_id, exc)

    async def _turn(self, msg: InboundMessage, chat_id: int, reply_to: int | None) -> None:
        lock = self._chat_locks.get(chat_id)
        if lock is None:
            lock = self._chat_locks[chat_id] = asyncio.Lock()
        async with lock:  # the next message of this chat waits until these replies are sent
            result = await self.engine.handle(msg)
            if not result.duplicate:
                answered = result.decision is not None and result.decision.action is Action.ANSWER
                await self._reply(chat_id, result.replies, reply_to, rate=msg.message_id if answered else "")

    async def _local_reply(self, update: Update, chat_id: int, key: str, user: User | None,
                           reply_to: int | None) -> None:
        """/start and /help: answered here, once per update like everything else."""
        if not await self.store.first_time(f"msg:{CHANNEL}", str(update.update_id)):
            return
        language = await self._language(chat_id, user)
        await self._reply(chat_id, [Reply(say(key, language))], reply_to)

    async def _language(self, chat_id: int, user: User | None) -> str:
        conversation = await self.store.load_conversation(f"{CHANNEL}:{chat_id}")
        if conversation is not None and conversation.transcript:
            return conversation.language
        return language_of(user)

    # --- outbound --------------------------------------------------------------------------

    async def deliver(self, conversation: Conversation, replies: Sequence[Reply]) -> None:
        """An agent's (or a late) reply outside a turn.  A refusal (bot blocked) or an outage
        that outlasted the retries is raised as :class:`DeliveryError`, so the desk can tell
        the agent the customer did not get it."""
        try:
            chat_id = int(conversation.chat_id)
        except ValueError:
            raise DeliveryError(f"telegram conversation {conversation.id} has no numeric chat id") from None
        lock = self._chat_locks.get(chat_id)
        if lock is None:
            lock = self._chat_locks[chat_id] = asyncio.Lock()
        async with lock:
            problem = await self._send(chat_id, replies)
        if problem:
            raise DeliveryError(problem)

    async def _reply(self, chat_id: int, replies: Sequence[Reply], reply_to: int | None = None,
                     rate: str = "") -> None:
        """Send inside a turn: problems are logged by :meth:`_send`; a deferral only noted."""
        try:
            await self._send(chat_id, replies, reply_to, rate)
        except DeliveryDeferred as exc:
            log.warning("telegram chat %s: %s", chat_id, exc)

    async def _send(self, chat_id: int, replies: Sequence[Reply], reply_to: int | None = None,
                    rate: str = "") -> str:
        """Send replies in order as plain text (no parse_mode: ``<`` or ``*`` in an answer is
        just a character); split long ones; buttons go on the last part, and when ``rate``
        (the customer message an FAQ answer answers) is given, 👍/👎 under the answer.  Errors are logged
        here and returned as a sentence ("" when everything was sent): inside a turn there is
        nobody to raise to, and the rest of Kefu must keep running.

        When Telegram is down (5xx or network errors outlasting the rate limiter's quick
        retries) the unsent parts are held and retried until it is back, and later sends queue
        behind them so the chat stays in order: :class:`DeliveryDeferred` says so."""
        parts: list[tuple[str, InlineKeyboardMarkup | None]] = []
        for number, reply in enumerate(replies):
            chunks = split_text(reply.text)
            markup = await keyboard(self.store, reply.suggestions)
            if rate and number == 0 and chunks:  # the answer is the turn's first reply
                markup = with_rating(markup, rate)
            parts += [(chunk, markup if index == len(chunks) - 1 else None) for index, chunk in enumerate(chunks)]
        if len(self.unsent):
            return self._hold(chat_id, parts, reply_to)
        for index, (text, markup) in enumerate(parts):
            try:
                await self._send_part(chat_id, text, markup, reply_to if index == 0 else None)
            except Forbidden as exc:
                log.warning("telegram chat %s does not accept messages (bot blocked?): %s", chat_id, exc)
                return f"the customer blocked the bot or left the chat ({exc})"
            except PlatformUnavailable:
                return self._hold(chat_id, parts[index:], reply_to if index == 0 else None)
            except TelegramError as exc:
                log.error("telegram send to chat %s failed: %s", chat_id, exc)
                return f"Telegram did not take the message ({exc})"
        return ""

    async def _send_part(self, chat_id: int, text: str, markup: InlineKeyboardMarkup | None,
                         reply_to: int | None) -> None:
        """One message; Telegram being down or still flood-limiting after the rate limiter's
        retries (not a timeout: that message may have arrived) is :class:`PlatformUnavailable`."""
        parameters = ReplyParameters(reply_to, allow_sending_without_reply=True) if reply_to is not None else None
        try:
            await self.app.bot.send_message(chat_id, text, reply_markup=markup, reply_parameters=parameters)
        except (Forbidden, TimedOut, TelegramBadRequest):
            raise
        except (NetworkError, RetryAfter) as exc:  # 5xx, connection failures, a long 429
            raise PlatformUnavailable(f"Telegram is unavailable: {exc}") from exc

    def _hold(self, chat_id: int, parts: list[tuple[str, InlineKeyboardMarkup | None]], reply_to: int | None) -> str:
        """Hold ``parts`` for a retry; raises :class:`DeliveryDeferred` (or returns why not)."""
        remaining = list(parts)

        async def send_rest() -> None:
            nonlocal reply_to
            while remaining:
                text, markup = remaining[0]
                await self._send_part(chat_id, text, markup, reply_to)
                remaining.pop(0)
                reply_to = None

        self._held_sends += 1
        if not self.unsent.hold(f"telegram send #{self._held_sends} to chat {chat_id}", send_rest):
            log.error("telegram send to chat %s lost: too many sends already held", chat_id)
            return "Telegram is unavailable and too many messages are already waiting"
        raise DeliveryDeferred("platform_unavailable", len(parts), until="Telegram answers again (retried by itself)")


def _button_label(markup: InlineKeyboardMarkup | None, data: str) -> str:
    if markup is None:
        return ""
    for row in markup.inline_keyboard:
        for button in row:
            if button.callback_data == data:
                return button.text
    return ""


def pressed(payload: str | None, label: str) -> Choice | None:
    """The typed choice of a pressed button: its payload (None when a long one kept in the store
    has expired) and the words on it, so an old button still says what the customer wants.  The
    engine reads it as its number when the choice is still on offer."""
    if not payload and not label:
        return None
    return Choice(payload or "", label)
