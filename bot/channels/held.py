"""Work held while something it needs is unreachable, and done once it answers.

WeChat does not redeliver a message we answered, Telegram polling has already moved past an
update, and a WeCom callback only says "there is something to sync": if Redis is down at that
moment, the platform will not bring the message back.  The channel answers politely and hands
the work (a turn, a sync) to :class:`HeldWork`, which retries it in arrival order with backoff
until the store answers, so a Redis restart delays customers but loses nothing.  The same
queue, retrying on :class:`PlatformUnavailable`, keeps answers that a platform's API refused
with a 5xx or a network error until the platform is back.  Held work lives in this process: it
survives the outage, not this worker's own death at the same time; what is still held at
shutdown is logged by id.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence

from bot import metrics
from bot.errors import KefuError, StoreUnavailable
from bot.storage.client import REDIS_ERRORS

log = logging.getLogger(__name__)

Work = Callable[[], Awaitable[object]]
STORE_ERRORS = (StoreUnavailable, *REDIS_ERRORS)
DELAYS = (0.5, 1.0, 2.0, 5.0)  # seconds between attempts while the dependency stays down


class PlatformUnavailable(KefuError):
    """A platform API failed in a way that may pass (5xx, network): worth trying again later."""


class HeldWork:
    def __init__(self, name: str, *, retry_on: tuple[type[BaseException], ...] = STORE_ERRORS,
                 give_up_after: float | None = None, limit: int = 10_000, delays: Sequence[float] = DELAYS) -> None:
        """``retry_on``: the failures that mean "not yet"; ``give_up_after``: seconds after
        which one item stops being retried (the work must leave things safe when it does)."""
        self.name = name
        self.retry_on = retry_on
        self.give_up_after = give_up_after
        self.limit = limit
        self.delays = tuple(delays)
        self._items: collections.deque[tuple[str, Work]] = collections.deque()
        self._ids: set[str] = set()
        self._task: asyncio.Task[None] | None = None

    def __len__(self) -> int:
        return len(self._items)

    def hold(self, item_id: str, work: Work) -> bool:
        """Queue ``work`` (first attempt right away); False when the queue is full.  An id that
        is already held is not held twice."""
        if item_id in self._ids:
            return True
        if len(self._items) >= self.limit:
            log.error("%s: %d items already held; refusing %s", self.name, len(self._items), item_id)
            return False
        self._items.append((item_id, work))
        self._ids.add(item_id)
        metrics.held(self.name, len(self._items))
        log.warning("%s: holding %s until it can be done (%d held)", self.name, item_id, len(self._items))
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._drain(), name=f"kefu-held-{self.name}")
        return True

    async def now_or_held(self, item_id: str, work: Work) -> bool:
        """Do ``work`` now (True), or hold it (False): behind earlier held work, so the order
        stays, or because it failed with a ``retry_on`` error.  A full queue re-raises that
        error (or :class:`StoreUnavailable` when nothing failed yet)."""
        failure: BaseException = StoreUnavailable(f"{self.name}: earlier work is still held")
        if not self._items:
            try:
                await work()
                return True
            except self.retry_on as exc:
                self._count_failure(exc)
                failure = exc
        if not self.hold(item_id, work):
            raise failure
        return False

    async def _drain(self) -> None:
        attempt = 0
        loop = asyncio.get_running_loop()
        since = loop.time()
        while self._items:
            item_id, work = self._items[0]
            try:
                await work()
            except self.retry_on as exc:
                self._count_failure(exc)
                if self.give_up_after is None or loop.time() - since < self.give_up_after:
                    await asyncio.sleep(self.delays[min(attempt, len(self.delays) - 1)])
                    attempt += 1
                    if attempt % 10 == 0:
                        log.warning("%s: %s still not done after %d attempts (%s)", self.name, item_id, attempt, exc)
                    continue
                log.error("%s: gave up on %s after %d attempts (%s)", self.name, item_id, attempt + 1, exc)
            except Exception:
                log.exception("%s: held %s failed for another reason; dropped", self.name, item_id)
            else:
                log.info("%s: held %s done", self.name, item_id)
            self._ids.discard(self._items.popleft()[0])
            metrics.held(self.name, len(self._items))
            attempt = 0
            since = loop.time()

    def _count_failure(self, exc: BaseException) -> None:
        """A platform that refused a send, or a Redis call that failed (``/metrics``)."""
        if isinstance(exc, PlatformUnavailable):
            metrics.send_failure(self.name.split(" ")[0])
        else:
            metrics.redis_error(self.name)

    async def idle(self) -> None:
        """Wait until everything held is done (tests, graceful shutdown)."""
        while self._task is not None and not self._task.done():
            await asyncio.shield(self._task)

    async def stop(self, timeout: float = 5.0) -> None:
        """Give held work ``timeout`` seconds to finish, then log what is lost with this process."""
        if self._task is not None and not self._task.done():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.idle(), timeout)
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._items:
            log.error("%s: shutting down with %d held items not done: %s", self.name, len(self._items),
                      ", ".join(item_id for item_id, _ in self._items))


def platform_retries(name: str) -> HeldWork:
    """Sends a platform refused with a passing error, retried every few seconds (at most 10
    apart, so an answer follows soon after the platform is back) for up to 30 minutes; then they
    wait where the channel keeps undelivered messages (the WeChat outbox: the customer's next
    message) or, for Telegram, are logged as lost."""
    return HeldWork(name, retry_on=(PlatformUnavailable, *STORE_ERRORS), give_up_after=1800,
                    delays=(1.0, 2.0, 5.0, 10.0))
