"""Keep this worker's knowledge current: react to the change announcement, and poll as a backstop.

Pub/sub is fire-and-forget (a worker reconnecting to Redis misses messages), so besides the
announcement every worker compares ``kb:version`` every ``POLL_SECONDS``; either way a saved
edit is answered by every worker within seconds, without a restart.  Each worker also reports
the version it answers from (``kb:served``), which the admin console waits for before it says
"saved".  What a reload does is the caller's (``reload``): the runtime rebuilds its layer.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from bot import keys
from bot.pubsub import Listener

log = logging.getLogger(__name__)
POLL_SECONDS = 2.0
STALE_AFTER = 4  # poll periods: a worker silent this long has stopped (or lost Redis) and is not counted
_REDIS_ERRORS = (RedisConnectionError, RedisTimeoutError, OSError)


async def served_versions(redis: aioredis.Redis, now: float,
                          poll_seconds: float = POLL_SECONDS) -> list[dict[str, Any]]:
    """The live workers and the knowledge version each answers from (stale ones are dropped)."""
    raw = await redis.hgetall(keys.kb_served())
    live, stale = [], []
    for worker, value in raw.items():
        data = json.loads(value)
        if now - float(data["at"]) > STALE_AFTER * poll_seconds:
            stale.append(worker)
        else:
            live.append({"worker": str(worker), "version": int(data["version"]), "at": float(data["at"])})
    if stale:
        await redis.hdel(keys.kb_served(), *stale)
    return sorted(live, key=lambda w: w["worker"])


class KnowledgeSync:
    """``reload()`` whenever a change is announced or the poll period passes; ``version()``
    is the version this worker answers from, reported after each reload."""

    def __init__(self, redis: aioredis.Redis, reload: Callable[[], Awaitable[object]], version: Callable[[], int],
                 poll_seconds: float = POLL_SECONDS, clock: Callable[[], float] = time.time) -> None:
        self.redis = redis
        self.reload = reload
        self.version = version
        self.poll_seconds = poll_seconds
        self.clock = clock
        self.worker = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self._wake = asyncio.Event()
        # on (re)subscription, whatever changed while we were not listening: reload now
        self.listener = Listener(redis, keys.kb_changes(), lambda _data: self._wake.set(),
                                 on_subscribed=self._wake.set, what="knowledge change")
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    async def start(self) -> None:
        self._stopping = False
        await self.listener.start()
        self._task = asyncio.create_task(self._reload_loop(), name="kefu-kb-reload")

    async def report(self) -> None:
        """Tell the others (the admin console) which version this worker now answers from."""
        document = json.dumps({"version": self.version(), "at": self.clock()})
        await self.redis.hset(keys.kb_served(), self.worker, document)

    async def stop(self) -> None:
        """Stop both loops.  The flag, not only the cancel, ends them: redis-py's read timeout
        can swallow a cancellation that lands inside it."""
        self._stopping = True
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
        listened = await self.listener.stop()
        if task is not None:
            _, pending = await asyncio.wait({task}, timeout=5)
            if pending or not listened:
                log.warning("knowledge sync did not stop in time")
        with contextlib.suppress(*_REDIS_ERRORS):  # a stopped worker no longer holds "saved" back
            await self.redis.hdel(keys.kb_served(), self.worker)

    async def _reload_loop(self) -> None:
        while not self._stopping:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self.poll_seconds)
            self._wake.clear()
            try:
                await self.reload()
                await self.report()
            except asyncio.CancelledError:
                raise
            except _REDIS_ERRORS as exc:
                log.warning("knowledge reload skipped: store unreachable (%s)", exc)
            except Exception:
                log.exception("knowledge reload failed; still answering from version %d", self.version())
