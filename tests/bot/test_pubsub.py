"""The one pub/sub listener both the console events and the knowledge sync run on: it delivers
messages, says when it (re)subscribed, reconnects after a lost connection, backs off while
Redis is unreachable, and stops cleanly."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable

import pytest
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from bot.pubsub import Listener
from tests.conftest import REDIS_URL, require_redis


@pytest.fixture
async def named() -> AsyncIterator[tuple[aioredis.Redis, str]]:
    """A real Redis client whose connections carry a unique name, so a test can cut exactly them."""
    require_redis()
    name = f"kefu-test-listener-{uuid.uuid4().hex[:8]}"
    client = aioredis.Redis.from_url(REDIS_URL, client_name=name)
    yield client, name
    await client.aclose()


async def until(condition: Callable[[], bool], seconds: float = 5.0) -> None:
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < seconds, "condition not reached in time"
        await asyncio.sleep(0.02)


async def test_messages_arrive_and_a_lost_connection_is_resubscribed(named: tuple[aioredis.Redis, str]) -> None:
    client, name = named
    channel = f"kefu:test:{name}"
    got: list[bytes] = []
    subscribed: list[int] = []
    listener = Listener(client, channel, got.append, on_subscribed=lambda: subscribed.append(1),
                        retry_seconds=0.1)
    await listener.start(wait=5)
    try:
        assert listener.running and subscribed == [1]
        await client.publish(channel, "one")
        await until(lambda: got == [b"one"])

        # the server drops the subscriber's connection: it comes back by itself and says so
        clients = await client.client_list()
        for info in clients:
            if info.get("name") == name and int(info.get("sub", 0)) > 0:
                await client.client_kill_filter(_id=info["id"])
        await until(lambda: len(subscribed) == 2)
        assert listener.subscriptions == 2
        await client.publish(channel, "two")
        await until(lambda: got == [b"one", b"two"])
    finally:
        assert await listener.stop() is True
    assert not listener.running


async def test_an_unreachable_store_is_retried_with_a_pause_and_stops_cleanly(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="bot.pubsub")
    nowhere = aioredis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2, retry=Retry(NoBackoff(), 0))
    listener = Listener(nowhere, "kefu:test:nowhere", lambda data: None, what="test", retry_seconds=0.2)
    await listener.start(wait=0.1)
    await asyncio.sleep(0.7)
    lost = [r for r in caplog.records if "test subscription lost" in r.getMessage()]
    assert 2 <= len(lost) <= 5  # retried, but paused between tries rather than spinning
    assert listener.subscriptions == 0
    started = time.monotonic()
    assert await listener.stop() is True
    assert time.monotonic() - started < 2
    await nowhere.aclose()


async def test_stop_before_start_and_twice_is_harmless(redis_client: aioredis.Redis) -> None:
    listener = Listener(redis_client, "kefu:test:idle", lambda data: None)
    assert await listener.stop() is True
    await listener.start(wait=5)
    assert listener.subscriptions == 1
    assert await listener.stop() is True and await listener.stop() is True
