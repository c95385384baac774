"""Keep this worker's knowledge current: react to the change announcement, and poll as a backstop.

Pub/sub is fire-and-forget (a worker reconnecting to Redis misses messages), so besides the
announcement every worker compares ``kb:version`` every ``POLL_SECONDS``; either way a saved
edit is answered by every worker within seconds, without a restart.  Each worker also reports
the version it answers from (``kb:served``), which the admin console waits for before it says
"saved".  What a reload does is the caller's (``reload``): the runtime rebuilds its layer.

A reload that fails (an index that cannot be built) is retried after a growing pause, not every
poll forever; a new announcement still retries at once (the next edit may fix it).  While a
reload runs, a probe measures how late the event loop runs (``lag_ms`` in the report): a
reload must never stall the turns this worker is serving.
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
BACKOFF_MAX = 300.0  # seconds: the longest pause between retries of a failing reload
PROBE_SECONDS = 0.005  # the loop-lag probe's tick while a reload runs
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
        self.failures = 0  # reloads failed in a row
        self.lag_ms = 0.0  # the event loop's worst lateness during the last reload
        self.reload_ms = 0.0  # how long the last reload took

    async def start(self) -> None:
        self._stopping = False
        await self.listener.start()
        self._task = asyncio.create_task(self._reload_loop(), name="kefu-kb-reload")

    async def report(self) -> None:
        """Tell the others (the admin console) which version this worker now answers from."""
        document = json.dumps({"version": self.version(), "at": self.clock(), "lag_ms": round(self.lag_ms, 1),
                               "reload_ms": round(self.reload_ms, 1), "failures": self.failures})
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

    def retry_after(self) -> float:
        """Seconds until the next poll: the poll period, doubled for every failure in a row."""
        return min(BACKOFF_MAX, self.poll_seconds * 2 ** self.failures) if self.failures else self.poll_seconds

    async def _reload_loop(self) -> None:
        while not self._stopping:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self.retry_after())
            self._wake.clear()
            try:
                await self._probed_reload()
                self.failures = 0
                await self.report()
            except asyncio.CancelledError:
                raise
            except _REDIS_ERRORS as exc:
                log.warning("knowledge reload skipped: store unreachable (%s)", exc)
            except Exception:
                self.failures += 1
                log.exception("knowledge reload failed (%d in a row); still answering from version %d; "
                              "next try in %.0f s or on the next change", self.failures, self.version(),
                              self.retry_after())
                with contextlib.suppress(*_REDIS_ERRORS):
                    await self.report()  # alive, and on the old version

    async def _probed_reload(self) -> None:
        """``reload()``, with a probe task measuring the loop's lateness meanwhile."""
        worst = [0.0]

        async def probe() -> None:
            loop = asyncio.get_running_loop()
            while True:
                due = loop.time() + PROBE_SECONDS
                await asyncio.sleep(PROBE_SECONDS)
                worst[0] = max(worst[0], loop.time() - due)

        begun = time.perf_counter()
        prober = asyncio.create_task(probe(), name="kefu-kb-lag-probe")
        try:
            await self.reload()
        finally:
            prober.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await prober
            self.reload_ms = (time.perf_counter() - begun) * 1000
            self.lag_ms = worst[0] * 1000
            if self.lag_ms > 50:
                log.warning("the event loop stalled %.0f ms during a knowledge reload", self.lag_ms)
