"""Outgoing Telegram traffic: message splitting, inline keyboards and the rate limiter.

Kept apart from the update handling in :mod:`bot.channels.telegram` so the rules that keep a
send from failing (4096-character limit, 64-byte callback data, flood limits, retries) can be
read and tested on their own.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from telegram import InlineKeyboardButton, InlineKeyboardMarkup
from telegram.error import BadRequest as TelegramBadRequest
from telegram.error import NetworkError, TimedOut
from telegram.ext import AIORateLimiter

from bot.storage.channels import ChannelState
from bot.storage.conversations import Store
from bot.types import Suggestion

log = logging.getLogger(__name__)

MAX_MESSAGE = 4096  # Telegram's limit on one text message, in UTF-16 code units
MAX_CALLBACK_DATA = 64  # bytes
MAX_BUTTON_LABEL = 60  # longer labels are cut: a button is a glance, the full text is in the message
CALLBACK_PREFIX = "kefu~"  # marks callback data that stands for a longer payload kept in the store
RATE_PREFIX = "kefu!"  # marks a 👍/👎 under an answer: kefu!<customer message id>:<1 helpful | 0 not>
CALLBACK_TTL_SECONDS = 7 * 86_400


def tg_length(text: str) -> int:
    """Length as Telegram counts it (UTF-16 code units: an emoji can count twice)."""
    return len(text.encode("utf-16-le")) // 2


def split_text(text: str, limit: int = MAX_MESSAGE) -> list[str]:
    """Cut ``text`` into messages of at most ``limit``, preferring paragraph, then line, then
    word boundaries, so a long FAQ answer reads naturally across messages."""
    text = text.strip()
    if not text:
        return []
    chunks: list[str] = []
    while tg_length(text) > limit:
        window = _prefix_within(text, limit)
        cut = -1
        for separator in ("\n\n", "\n", "。", ". ", " "):
            position = window.rfind(separator)
            if position > limit // 4:  # a cut too early would leave a tiny message
                cut = position + len(separator)
                break
        if cut <= 0:
            cut = len(window)
        head, text = text[:cut].rstrip(), text[cut:].lstrip()
        if head:
            chunks.append(head)
    if text:
        chunks.append(text)
    return chunks


def _prefix_within(text: str, limit: int) -> str:
    """The longest prefix of ``text`` Telegram counts as at most ``limit`` long."""
    end = min(len(text), limit)
    while tg_length(text[:end]) > limit:
        end -= 1
    return text[:end]


async def callback_data(store: Store, payload: str) -> str:
    """The callback data for ``payload``: itself when it fits in 64 bytes, else a short key
    whose payload is kept in the store (a button press must give back the full payload)."""
    if len(payload.encode("utf-8")) <= MAX_CALLBACK_DATA and not payload.startswith((CALLBACK_PREFIX, RATE_PREFIX)):
        return payload
    short = hashlib.sha256(payload.encode("utf-8")).hexdigest()[:32]
    await ChannelState(store.redis, "telegram").save_payload(short, payload, CALLBACK_TTL_SECONDS)
    return CALLBACK_PREFIX + short


async def payload_of(store: Store, data: str) -> str | None:
    """The payload a pressed button stands for; None if a stored one expired."""
    if not data.startswith(CALLBACK_PREFIX):
        return data
    return await ChannelState(store.redis, "telegram").payload(data[len(CALLBACK_PREFIX):])


async def keyboard(store: Store, suggestions: tuple[Suggestion, ...]) -> InlineKeyboardMarkup | None:
    """One button per row: clarify titles are whole questions and need the width."""
    if not suggestions:
        return None
    rows = []
    for suggestion in suggestions:
        label = suggestion.label if len(suggestion.label) <= MAX_BUTTON_LABEL else suggestion.label[:59] + "…"
        rows.append([InlineKeyboardButton(label, callback_data=await callback_data(store, suggestion.payload))])
    return InlineKeyboardMarkup(rows)


def with_rating(markup: InlineKeyboardMarkup | None, message_id: str) -> InlineKeyboardMarkup:
    """``markup`` plus a row of 👍 / 👎 rating the answer to the customer's message ``message_id``
    (the update id Kefu gave the engine: short enough for the 64-byte callback data)."""
    row = [InlineKeyboardButton(icon, callback_data=f"{RATE_PREFIX}{message_id}:{vote}")
           for icon, vote in (("👍", 1), ("👎", 0))]
    return InlineKeyboardMarkup([*(markup.inline_keyboard if markup is not None else ()), row])


def rating_of(data: str) -> tuple[str, bool] | None:
    """(customer message id, helpful) of a pressed 👍/👎; None for any other button."""
    if not data.startswith(RATE_PREFIX):
        return None
    message_id, _, vote = data[len(RATE_PREFIX):].rpartition(":")
    return (message_id, vote == "1") if message_id and vote in ("0", "1") else None


def without_rating(markup: InlineKeyboardMarkup | None) -> InlineKeyboardMarkup | None:
    """``markup`` once the answer is rated: the other buttons stay (a related question is still
    one tap away), the rating row goes."""
    if markup is None:
        return None
    rows = [row for row in markup.inline_keyboard
            if not any(isinstance(button.callback_data, str) and button.callback_data.startswith(RATE_PREFIX)
                       for button in row)]
    return InlineKeyboardMarkup(rows) if rows else None


Callback = Callable[..., Coroutine[Any, Any, bool | dict[str, Any] | list[dict[str, Any]]]]


class KefuRateLimiter(AIORateLimiter):
    """PTB's flood-limit aware limiter (30 messages/s overall, 20/min per group, 429
    ``retry_after`` honoured and retried), plus a few retries of sends that failed on the
    network or with a 5xx, so a passing Telegram hiccup does not lose a customer's answer.

    Not retried: 400s (retrying cannot help), timeouts (the message may have been delivered,
    a retry could duplicate it) and ``getUpdates`` (the updater has its own back-off).
    """

    def __init__(self, max_retries: int, network_retries: int, network_backoff: float = 0.5) -> None:
        super().__init__(max_retries=max_retries)
        self.network_retries = network_retries
        self.network_backoff = network_backoff

    async def process_request(
        self,
        callback: Callback,
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: int | None,
    ) -> bool | dict[str, Any] | list[dict[str, Any]]:
        retries = 0 if endpoint == "getUpdates" else self.network_retries
        for attempt in range(retries + 1):
            try:
                return await super().process_request(callback, args, kwargs, endpoint, data, rate_limit_args)
            except (TelegramBadRequest, TimedOut):
                raise
            except NetworkError as exc:
                if attempt == retries:
                    raise
                delay = self.network_backoff * 2**attempt
                log.warning("telegram %s failed (%s); retry %d/%d in %.1fs", endpoint, exc, attempt + 1,
                            retries, delay)
                await asyncio.sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover
