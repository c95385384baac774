"""Compatibility names: the storage layer lives in :mod:`bot.storage` (one repository per kind of data)."""

from bot.storage.client import REDIS_ERRORS, SENTINEL_FORM, SENTINEL_SCHEME, SentinelUrl, connect
from bot.storage.conversations import (
    OPEN_TICKET_FACTOR,
    RUNNING,
    WAIT_REPLICAS_MS,
    Duplicate,
    Store,
    TurnStart,
)

__all__ = ["OPEN_TICKET_FACTOR", "REDIS_ERRORS", "RUNNING", "SENTINEL_FORM", "SENTINEL_SCHEME", "WAIT_REPLICAS_MS",
           "Duplicate", "SentinelUrl", "Store", "TurnStart", "connect"]
