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
from bot.pubsub import Listener
from bot.storage.client import REDIS_ERRORS

log = logging.getLogger(__name__)
QUEUE_LIMIT = 200


class EventBus:
    def __init__(self, redis: aioredis.Redis) -> None:
        self.redis = redis
        self._listeners: set[asyncio.Queue[dict[str, Any]]] = set()
        # on every (re)subscription: anything published while disconnected is re-read
        self.listener = Listener(redis, keys.agent_events(), self._received, what="console event",
                                 on_subscribed=lambda: self._fan_out({"type": "resync"}))

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

    def _received(self, data: Any) -> None:
        try:
            self._fan_out(json.loads(data))
        except (ValueError, TypeError):
            log.warning("ignored a malformed console event")

    async def start(self) -> None:
        await self.listener.start(wait=5)

    async def stop(self) -> None:
        """Stop listening (see :meth:`bot.pubsub.Listener.stop`)."""
        await self.listener.stop()
