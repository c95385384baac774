"""Keep this worker's knowledge current: react to the change announcement, and poll as a backstop.

Pub/sub is fire-and-forget (a worker reconnecting to Redis misses messages), so besides the
announcement every worker compares ``kb:version`` every ``POLL_SECONDS``; either way a saved
edit is answered by every worker within seconds, without a restart.
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
from collections.abc import Callable
from typing import Any

import redis.asyncio as aioredis

from bot import keys
from bot.runtime import Runtime
from bot.store import REDIS_ERRORS

log = logging.getLogger(__name__)
POLL_SECONDS = 2.0
STALE_AFTER = 4  # poll periods: a worker silent this long has stopped (or lost Redis) and is not counted


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
    def __init__(self, runtime: Runtime, poll_seconds: float = POLL_SECONDS,
                 clock: Callable[[], float] = time.time) -> None:
        self.runtime = runtime
        self.poll_seconds = poll_seconds
        self.clock = clock
        self.worker = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self._tasks: list[asyncio.Task[None]] = []
        self._wake = asyncio.Event()
        self._stopping = False

    async def start(self) -> None:
        self._stopping = False
        self._tasks = [asyncio.create_task(self._listen(), name="kefu-kb-listen"),
                       asyncio.create_task(self._reload_loop(), name="kefu-kb-reload")]

    async def report(self) -> None:
        """Tell the others (the admin console) which version this worker now answers from."""
        document = json.dumps({"version": self.runtime.knowledge.version, "at": self.clock()})
        await self.runtime.store.redis.hset(keys.kb_served(), self.worker, document)

    async def stop(self) -> None:
        """Stop both loops.  The flag, not only the cancel, ends them: redis-py's read timeout
        can swallow a cancellation that lands inside it."""
        self._stopping = True
        for task in self._tasks:
            task.cancel()
        if self._tasks:
            _, pending = await asyncio.wait(self._tasks, timeout=5)
            if pending:
                log.warning("knowledge sync did not stop in time")
        self._tasks = []
        with contextlib.suppress(*REDIS_ERRORS):  # a stopped worker no longer holds "saved" back
            await self.runtime.store.redis.hdel(keys.kb_served(), self.worker)

    async def _reload_loop(self) -> None:
        while not self._stopping:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self.poll_seconds)
            self._wake.clear()
            try:
                await self.runtime.reload_knowledge()
                await self.report()
            except asyncio.CancelledError:
                raise
            except REDIS_ERRORS as exc:
                log.warning("knowledge reload skipped: store unreachable (%s)", exc)
            except Exception:
                log.exception("knowledge reload failed; still answering from version %d",
                              self.runtime.knowledge.version)

    async def _listen(self) -> None:
        redis = self.runtime.store.redis
        while not self._stopping:
            pubsub = redis.pubsub()
            try:
                await pubsub.subscribe(keys.kb_changes())
                self._wake.set()  # whatever changed while we were not listening
                while not self._stopping:
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                    if message is not None and message.get("type") == "message":
                        self._wake.set()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("knowledge change subscription lost (%s); reconnecting", exc)
                await asyncio.sleep(1)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]
