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
# Bounded by non-digits only: "身份证11010519491231002Xabc" and "id:110105...1234号" are IDs too.
_ID_CARD = re.compile(r"(?<!\d)(\d{6})(?:19|20)\d{2}[01]\d[0-3]\d\d{3}([\dXx])(?!\d)")
# Mainland mobile numbers, optionally +86 / 86 / spaces or dashes between groups.
_MOBILE = re.compile(r"(?<!\d)((?:\+?86[\s-]?)?1[3-9]\d)[\s-]?\d{4}[\s-]?(\d{4})(?!\d)")
# Credentials that libraries put in request URLs (WeChat's access_token, WeCom's corpsecret...), and
# WeChat's callback signature parameters (plain mode puts them in every access-log line).
_SECRET_PARAM = re.compile(r"(?i)\b((?:access_token|secret|corpsecret|appsecret|token|password|"
                           r"signature|msg_signature|timestamp|nonce|echostr)=)[^&\s'\"]+")
_EMAIL = re.compile(r"\b([A-Za-z0-9._%+-])[A-Za-z0-9._%+-]*(@[A-Za-z0-9.-]+\.[A-Za-z]{2,})\b")


def mask_pii(text: str) -> str:
    """``text`` with ID-card numbers, mobile numbers and e-mail addresses masked."""
    text = _ID_CARD.sub(lambda m: f"{m.group(1)}***********{m.group(2)}", text)
    text = _MOBILE.sub(lambda m: f"{m.group(1)}****{m.group(2)}", text)
    return _EMAIL.sub(lambda m: f"{m.group(1)}***{m.group(2)}", text)


def redact_secrets(text: str) -> str:
    """``text`` with credential query parameters replaced by ``***``."""
    return _SECRET_PARAM.sub(r"\1***", text)


def _scrub(value: Any, pii: bool) -> Any:
    if isinstance(value, str):
        text = redact_secrets(value)
        return mask_pii(text) if pii else text
    if isinstance(value, bool | int | float) or value is None:
        return value  # formatted with %d/%f; a phone-like number in an int arg is caught below
    text = str(value)
    scrubbed = _scrub(text, pii)
    return value if scrubbed == text else scrubbed


def _masked(record: logging.LogRecord, pii: bool) -> logging.LogRecord:
    """Mask the record's message *and* arguments one by one, keeping their shape: formatters that
    read ``record.args`` (uvicorn's access line) still work, so no request can hide itself from
    the access log by putting a phone-like number in its URL."""
    try:
        message = record.getMessage()
    except Exception:  # a broken format string: leave it to logging's own error report
        return record
    masked = _scrub(message, pii)
    if masked != message:
        if isinstance(record.msg, str):
            record.msg = _scrub(record.msg, pii)
        if isinstance(record.args, tuple):
            record.args = tuple(_scrub(a, pii) for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {k: _scrub(v, pii) for k, v in record.args.items()}
        try:
            still = record.getMessage() != masked
        except (TypeError, ValueError):
            still = True
        if still and record.name != "uvicorn.access":  # e.g. a number split over two args
            record.msg, record.args = masked, ()
    if record.exc_info:
        record.exc_text = _scrub(logging.Formatter().formatException(record.exc_info), pii)
    return record


def mask_logs(pii: bool = True) -> None:
    """From now on, redact credentials (always) and mask personal data (``pii``) in every log
    record, whichever handler writes it (Kefu's, uvicorn's, a library's): done where records are
    made, not per handler.  Installing again replaces the earlier choice."""
    factory = logging.getLogRecordFactory()
    base = getattr(factory, "kefu_inner", factory)

    def make_record(*args: Any, **kwargs: Any) -> logging.LogRecord:
        return _masked(base(*args, **kwargs), pii)

    make_record.kefu_inner = base  # type: ignore[attr-defined]
    logging.setLogRecordFactory(make_record)
