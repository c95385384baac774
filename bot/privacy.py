"""Personal data in text that leaves the conversation: logs and agent exports.

Customers paste phone numbers and ID-card numbers into chats (orders, refunds, identity
checks).  Those must not end up readable in log files or in exported transcripts, where they
outlive the conversation's retention period.  Masking keeps enough to recognise a number
(first 3 / last 4 digits) without revealing it.
"""

from __future__ import annotations

import logging
import re
from typing import Any

# 18-character resident ID: 6-digit region, 8-digit birth date (19xx/20xx), sequence, check digit.
_ID_CARD = re.compile(r"(?<![0-9A-Za-z])(\d{6})(?:19|20)\d{2}[01]\d[0-3]\d\d{3}([\dXx])(?![0-9A-Za-z])")
# Mainland mobile numbers, optionally +86 / 86 / spaces or dashes between groups.
_MOBILE = re.compile(r"(?<!\d)((?:\+?86[\s-]?)?1[3-9]\d)[\s-]?\d{4}[\s-]?(\d{4})(?!\d)")
# Credentials that libraries put in request URLs (WeChat's access_token, WeCom's corpsecret...).
_SECRET_PARAM = re.compile(r"(?i)\b((?:access_token|secret|corpsecret|appsecret|token|password)=)[^&\s'\"]+")
_EMAIL = re.compile(r"\b([A-Za-z0-9._%+-])[A-Za-z0-9._%+-]*(@[A-Za-z0-9.-]+\.[A-Za-z]{2,})\b")


def mask_pii(text: str) -> str:
    """``text`` with ID-card numbers, mobile numbers and e-mail addresses masked."""
    text = _ID_CARD.sub(lambda m: f"{m.group(1)}***********{m.group(2)}", text)
    text = _MOBILE.sub(lambda m: f"{m.group(1)}****{m.group(2)}", text)
    return _EMAIL.sub(lambda m: f"{m.group(1)}***{m.group(2)}", text)


def redact_secrets(text: str) -> str:
    """``text`` with credential query parameters replaced by ``***``."""
    return _SECRET_PARAM.sub(r"\1***", text)


def _masked(record: logging.LogRecord) -> logging.LogRecord:
    message = record.getMessage()
    masked = redact_secrets(mask_pii(message))
    if masked != message:
        record.msg, record.args = masked, None
    if record.exc_info:
        record.exc_text = redact_secrets(mask_pii(logging.Formatter().formatException(record.exc_info)))
    return record


def mask_logs() -> None:
    """Mask personal data and credentials in URLs in every log record from now on, whichever handler writes it
    (Kefu's, uvicorn's, a library's): done where records are made, not per handler."""
    factory = logging.getLogRecordFactory()
    if getattr(factory, "kefu_masking", False):
        return

    def make_record(*args: Any, **kwargs: Any) -> logging.LogRecord:
        return _masked(factory(*args, **kwargs))

    make_record.kefu_masking = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(make_record)
