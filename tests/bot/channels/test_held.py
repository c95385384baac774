"""HeldWork: work that needs the store waits for it, in order, and is done once."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from bot.channels.held import HeldWork
from bot.errors import StoreUnavailable


class Store:
    """A store that is down until told otherwise; records the work done."""

    def __init__(self) -> None:
        self.up = False
        self.done: list[str] = []
        self.attempts = 0

    def work(self, name: str, fails_with: Exception | None = None) -> Callable[[], Awaitable[None]]:
        async def run() -> None:
            self.attempts += 1
            if not self.up:
                raise StoreUnavailable("down")
            if fails_with is not None:
                raise fails_with
            self.done.append(name)
        return run


async def test_held_work_waits_for_the_store_and_runs_once_in_order() -> None:
    store, held = Store(), HeldWork("test", delays=[0.01])
    for name in ("first", "second", "third"):
        assert held.hold(name, store.work(name))
    while store.attempts < 5:
        await asyncio.sleep(0.01)
    assert store.done == [] and len(held) == 3  # still down: nothing done, nothing dropped
    store.up = True
    await held.idle()
    assert store.done == ["first", "second", "third"] and len(held) == 0


async def test_a_failure_other_than_the_store_is_logged_and_the_rest_goes_on(
        caplog: pytest.LogCaptureFixture) -> None:
    store, held = Store(), HeldWork("test", delays=[0.01])
    store.up = True
    held.hold("broken", store.work("broken", fails_with=ValueError("bad message")))
    held.hold("fine", store.work("fine"))
    await held.idle()
    assert store.done == ["fine"]
    assert "held broken failed for another reason; dropped" in caplog.text


async def test_a_full_queue_refuses_and_shutdown_names_what_is_lost(caplog: pytest.LogCaptureFixture) -> None:
    store, held = Store(), HeldWork("test", limit=2, delays=[0.01])
    assert held.hold("a", store.work("a")) and held.hold("b", store.work("b"))
    assert not held.hold("c", store.work("c"))
    await held.stop(timeout=0.05)
    assert "shutting down with 2 held items not done: a, b" in caplog.text



async def test_an_id_is_held_once_and_an_item_is_given_up_after_its_time(caplog: pytest.LogCaptureFixture) -> None:
    store, held = Store(), HeldWork("test", give_up_after=0.05, delays=[0.01])
    assert held.hold("same", store.work("same")) and held.hold("same", store.work("same"))
    assert len(held) == 1
    await held.idle()  # the store never came back: given up, logged
    assert store.done == [] and len(held) == 0 and "gave up on same" in caplog.text
    store.up = True
    held.hold("same", store.work("same"))  # a new hold of that id after it left the queue
    await held.idle()
    assert store.done == ["same"]


async def test_now_or_held_does_work_now_or_queues_it_behind_what_is_held() -> None:
    store, held = Store(), HeldWork("test", delays=[0.01])
    assert not await held.now_or_held("first", store.work("first"))  # store down: held
    store.up = True
    assert not await held.now_or_held("second", store.work("second"))  # behind "first", not before it
    await held.idle()
    assert store.done == ["first", "second"]
    assert await held.now_or_held("third", store.work("third"))  # nothing held: done now
    assert store.done == ["first", "second", "third"]
