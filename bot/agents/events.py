"""Live console updates: publish once to Redis pub/sub, every worker fans out to its consoles.

An agent's browser may be connected to any worker; whichever worker changes a ticket publishes
the event, and each worker's single subscriber copies it to the SSE streams it serves.  Pub/sub
is fire-and-forget, so the console re-reads the inbox whenever its stream (re)connects; events
only say "look again", the state itself is always read from the store.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any

import redis.asyncio as aioredis

from bot import keys, metrics
from bot.store import REDIS_ERRORS

log = logging.getLogger(__name__)
QUEUE_LIMIT = 200


class EventBus:
    def __init__(self, redis: aioredis.Redis) -> None:
        self.redis = redis
        self._listeners: set[asyncio.Queue[dict[str, Any]]] = set()
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()
        self._stopping = False

    async def publish(self, kind: str, **data: Any) -> None:
        event = {"type": kind, **data}
        if kind == "ticket" and isinstance(data.get("change"), str):  # once per change, by the worker making it
            metrics.ticket_event(data["change"])
        elif kind == "rating" and "rating" in data:
            metrics.ticket_event("rating", data["rating"])
        try:
            await self.redis.publish(keys.agent_events(), json.dumps(event, ensure_ascii=False))
        except REDIS_ERRORS as exc:  # a missed live update is repaired by the next inbox read
            log.warning("could not publish %s event: %s", kind, exc)

    def subscribe(self) -> asyncio.Queue[dict[str, Any]]:
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(QUEUE_LIMIT)
        self._listeners.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[dict[str, Any]]) -> None:
        self._listeners.discard(queue)

    def _fan_out(self, event: dict[str, Any]) -> None:
        for queue in list(self._listeners):
            if queue.full():  # a stalled browser: drop its oldest event rather than block everyone
                with contextlib.suppress(asyncio.QueueEmpty):
                    queue.get_nowait()
            queue.put_nowait(event)

    async def start(self) -> None:
        self._stopping = False
        self._task = asyncio.create_task(self._run(), name="kefu-agent-events")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._ready.wait(), timeout=5)

    async def stop(self) -> None:
        """Stop listening.  The flag, not only the cancel, ends the loop: a cancellation that
        lands inside the client's own read timeout can be swallowed by it."""
        self._stopping = True
        if self._task is not None:
            self._task.cancel()
            done, _ = await asyncio.wait({self._task}, timeout=5)
            if not done:
                log.warning("console event listener did not stop in time")
            self._task = None

    async def _run(self) -> None:
        while not self._stopping:
            pubsub = self.redis.pubsub()
            try:
                await pubsub.subscribe(keys.agent_events())
                self._ready.set()
                self._fan_out({"type": "resync"})  # anything published while disconnected: re-read
                while not self._stopping:
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                    if message is not None and message.get("type") == "message":
                        try:
                            self._fan_out(json.loads(message["data"]))
                        except (ValueError, TypeError):
                            log.warning("ignored a malformed console event")
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("console event subscription lost (%s); reconnecting", exc)
                await asyncio.sleep(1)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]
