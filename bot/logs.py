"""Logging set-up shared by the CLI and by each ``kefu serve --workers N`` worker process.

``logging.format: json`` writes one JSON object per line with stable field names (``ts``,
``level``, ``logger``, ``pid``, ``message``, and for a turn ``turn_id``, ``channel``,
``conversation``, ``outcome``, ``reason``, ``latency_ms``), for log collectors (Loki, Elastic,
Cloud Logging) that index fields instead of parsing text.
"""

from __future__ import annotations

import hashlib
import json
import logging
from datetime import UTC, datetime
from typing import Any

from bot.privacy import mask_logs

FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(process)d %(name)s: %(message)s"


def masked_id(conversation_id: str) -> str:
    """``channel:`` and a short hash of the rest: log lines about one conversation can still be
    grouped, but the platform's user id (an openid, a Telegram chat id) is not written out."""
    channel, _, rest = conversation_id.partition(":")
    digest = hashlib.sha256(rest.encode()).hexdigest()[:12]
    return f"{channel}:{digest}" if rest else digest


class JsonFormatter(logging.Formatter):
    """One JSON object per record; turn fields come from ``extra={"turn": {...}}``."""

    def __init__(self, mask: bool = True) -> None:
        super().__init__()
        self.mask = mask

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(), "logger": record.name, "pid": record.process,
            "message": record.getMessage(),
        }
        turn = getattr(record, "turn", None)
        if isinstance(turn, dict):
            data.update(turn)
            if self.mask and isinstance(turn.get("conversation"), str):
                data["conversation"] = masked_id(turn["conversation"])
        if record.exc_info:
            data["exception"] = record.exc_text or self.formatException(record.exc_info)
        return json.dumps(data, ensure_ascii=False, default=str)


def configure_logging(verbose: bool = False, mask: bool = True, fmt: str = "text") -> None:
    """Set the root handler's level and format (called again once the config is read)."""
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, format=TEXT_FORMAT)
    root = logging.getLogger()
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    formatter: logging.Formatter = JsonFormatter(mask) if fmt == "json" else logging.Formatter(TEXT_FORMAT)
    for handler in root.handlers:
        handler.setFormatter(formatter)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):  # uvicorn's own handlers, same format
        for handler in logging.getLogger(name).handlers:
            handler.setFormatter(formatter)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request, with URLs
    mask_logs(pii=mask)  # credentials in URLs are redacted even when personal data is not masked
