"""One long-lived Redis pub/sub subscriber per worker and channel, reconnecting on its own.

Pub/sub is fire-and-forget: a subscriber that was disconnected has missed whatever was
published meanwhile.  So every (re)subscription calls ``on_subscribed``, where the owner
repairs from the stored state (re-read the inbox, compare the knowledge version); messages
only say "look again".  A lost connection is logged and retried after ``retry_seconds``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

import redis.asyncio as aioredis

log = logging.getLogger(__name__)

RETRY_SECONDS = 1.0
READ_TIMEOUT = 1.0  # how often the loop looks at the stop flag while the channel is quiet
STOP_SECONDS = 5.0


class Listener:
    """Calls ``on_message(data)`` for every message on ``channel`` until :meth:`stop`.

    ``what`` names the subscription in log lines ("console event", "knowledge change")."""

    def __init__(self, redis: aioredis.Redis, channel: str, on_message: Callable[[Any], None], *,
                 on_subscribed: Callable[[], None] = lambda: None, what: str = "pub/sub",
                 retry_seconds: float = RETRY_SECONDS) -> None:
        self.redis = redis
        self.channel = channel
        self.on_message = on_message
        self.on_subscribed = on_subscribed
        self.what = what
        self.retry_seconds = retry_seconds
        self.subscriptions = 0  # how many times it (re)subscribed: 1 + reconnections
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()
        self._stopping = False

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def start(self, wait: float = 0.0) -> None:
        """Start listening; with ``wait``, return once subscribed (or after ``wait`` seconds)."""
        self._stopping = False
        self._ready.clear()
        self._task = asyncio.create_task(self._run(), name=f"kefu-listen-{self.channel}")
        if wait > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._ready.wait(), timeout=wait)

    async def stop(self, timeout: float = STOP_SECONDS) -> bool:
        """Stop listening; False if the loop did not end within ``timeout``.  The flag, not only
        the cancel, ends it: a cancellation that lands inside the client's own read timeout can
        be swallowed by it."""
        self._stopping = True
        task, self._task = self._task, None
        if task is None:
            return True
        task.cancel()
        done, _ = await asyncio.wait({task}, timeout=timeout)
        if not done:
            log.warning("%s listener did not stop in time", self.what)
        return bool(done)

    async def _run(self) -> None:
        while not self._stopping:
            pubsub = self.redis.pubsub()
            try:
                await pubsub.subscribe(self.channel)
                self.subscriptions += 1
                self._ready.set()
                self.on_subscribed()
                while not self._stopping:
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=READ_TIMEOUT)
                    if message is not None and message.get("type") == "message":
                        self.on_message(message["data"])
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("%s subscription lost (%s); reconnecting", self.what, exc)
                await asyncio.sleep(self.retry_seconds)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()  # type: ignore[no-untyped-call, unused-ignore]
