"""Logging set-up shared by the CLI and by each ``kefu serve --workers N`` worker process."""

from __future__ import annotations

import logging

from bot.privacy import mask_logs


def configure_logging(verbose: bool = False, mask: bool = True) -> None:
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(process)d %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request, with URLs
    mask_logs(pii=mask)  # credentials in URLs are redacted even when personal data is not masked
