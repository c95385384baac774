"""Repositories run against the parametrised client (embedded and real Redis); the round-trip
counter wraps a real connection, so what it counts is what goes over the wire."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio as aioredis
from redis.asyncio.connection import Connection

from bot.config import StoreConfig
from bot.storage.conversations import Store
from tests.conftest import REDIS_URL, require_redis


class CountingConnection(Connection):
    """A real connection that counts the writes it sends: one per command, one per pipeline."""

    sent = 0

    async def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        type(self).sent += 1
        await super().send_packed_command(command, check_health)


@pytest.fixture
async def counted() -> AsyncIterator[aioredis.Redis]:
    """A client on the real Redis whose round trips :class:`CountingConnection` counts."""
    require_redis()
    pool = aioredis.ConnectionPool.from_url(REDIS_URL, decode_responses=True, connection_class=CountingConnection)
    client = aioredis.Redis(connection_pool=pool)
    store = Store(client, StoreConfig())
    await store.clear()
    yield client
    await store.clear()
    await client.aclose()
