"""A ``kefu serve --workers N`` worker that starts while Redis is down waits for it (a worker
whose start fails makes uvicorn stop every worker), and still stops when told to; a serving
process keeps its index out of the cycle collector's walks, and a reload frees the old index."""

from __future__ import annotations

import asyncio
import gc
import os
import shutil
import signal
import threading
import time
import weakref
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import cast

import httpx
import pytest

from bench.drill_web import Redis, _free_port, _serve
from bot.app import load_when_reachable
from bot.config import Config
from bot.errors import StoreUnavailable
from bot.runtime import Runtime
from bot.storage.client import connect
from bot.workers import settle_heap, settle_heap_after_loads, stop_requested
from knowledge.service import KnowledgeService


class _Flaky:
    """A runtime whose store answers after ``failures`` refused connections."""

    def __init__(self, failures: int) -> None:
        self.failures, self.calls = failures, 0

    async def load(self) -> None:
        self.calls += 1
        if self.calls <= self.failures:
            raise StoreUnavailable("cannot reach the store at redis://127.0.0.1:1/0: refused")


def test_a_worker_waits_for_the_store_and_then_loads(caplog: pytest.LogCaptureFixture) -> None:
    runtime = _Flaky(failures=3)
    asyncio.run(load_when_reachable(cast(Runtime, runtime), first_wait=0.001, longest_wait=0.002))
    assert runtime.calls == 4
    waits = [r.getMessage() for r in caplog.records if "waiting for it" in r.getMessage()]
    assert len(waits) == 3 and "next try in 0.0 s" in waits[0]


def test_a_waiting_worker_stops_when_told_to() -> None:
    seen: list[int] = []

    def uvicorns(sig: int, frame: FrameType | None) -> None:
        seen.append(sig)

    previous = signal.signal(signal.SIGTERM, uvicorns)
    try:
        runtime = _Flaky(failures=10**9)
        threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGTERM)).start()
        with pytest.raises(StoreUnavailable):
            asyncio.run(load_when_reachable(cast(Runtime, runtime), first_wait=0.05, longest_wait=0.05))
        assert seen == [signal.SIGTERM]  # uvicorn's own handler still got the signal
        assert signal.getsignal(signal.SIGTERM) is uvicorns  # and is back in place
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_stop_requested_outside_the_main_thread_is_never_set() -> None:
    result: list[bool] = []

    def off_main() -> None:
        with stop_requested() as stopping:
            result.append(stopping.is_set())

    thread = threading.Thread(target=off_main)
    thread.start()
    thread.join()
    assert result == [False]


@pytest.mark.redis
def test_kefu_serve_survives_a_worker_restarting_during_a_redis_outage_and_stops_on_sigterm(
        tmp_path: Path, cache_dir: Path) -> None:
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server not installed")
    store = Redis(tmp_path)
    store.start()
    config = tmp_path / "kefu.yaml"
    config.write_text(f"store:\n  url: {store.url}\nknowledge:\n  cache_dir: {cache_dir}\n"
                      "intents:\n  embeddings: false\n", encoding="utf-8")
    port, log = _free_port(), tmp_path / "serve.log"
    server = _serve(config, port, log, "http://127.0.0.1:9")
    try:
        base = f"http://127.0.0.1:{port}"
        victim = httpx.get(f"{base}/healthz", headers={"Connection": "close"}).json()["worker_pid"]
        store.signal(signal.SIGKILL)
        os.kill(victim, signal.SIGKILL)
        deadline = time.monotonic() + 60
        while "waiting for it before this worker answers" not in log.read_text(errors="replace"):
            assert server.poll() is None, log.read_text()[-2000:]  # before: "failed to start, stopping"
            assert time.monotonic() < deadline, log.read_text()[-2000:]
            time.sleep(0.1)
        store.start()
        deadline = time.monotonic() + 60
        pids: set[int] = set()
        while len(pids) < 2:  # both workers answer again, the replacement among them
            assert time.monotonic() < deadline, log.read_text()[-2000:]
            try:
                pids.add(httpx.get(f"{base}/healthz", headers={"Connection": "close"}).json()["worker_pid"])
            except httpx.HTTPError:
                time.sleep(0.1)
        assert victim not in pids and server.poll() is None

        store.signal(signal.SIGKILL)  # down again, and a worker waiting for it, when we stop
        os.kill(min(pids), signal.SIGKILL)
        offset = len(log.read_bytes())
        deadline = time.monotonic() + 60
        while b"waiting for it before" not in log.read_bytes()[offset:]:
            assert time.monotonic() < deadline, log.read_text()[-2000:]
            time.sleep(0.1)
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=20) is not None
    finally:
        if server.poll() is None:
            server.kill()
        store.stop()


@pytest.fixture
def collector() -> Iterator[None]:
    """The cycle collector off (what is freed here is freed by reference counting) and the heap
    unfrozen and settling off again afterwards."""
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        settle_heap_after_loads(False)
        gc.unfreeze()
        gc.enable()


def test_settling_the_heap_is_for_serving_processes_only(collector: None) -> None:
    settle_heap()
    assert gc.get_freeze_count() == 0  # tests and the CLI: untouched
    settle_heap_after_loads()
    settle_heap()
    assert gc.get_freeze_count() > 10_000


async def test_a_reload_settles_the_heap_leaves_no_cycles_and_frees_the_old_index(config: Config,
                                                                                   collector: None) -> None:
    settle_heap_after_loads()
    runtime = await Runtime.start(config, redis=connect("memory://"))
    loaded = gc.get_freeze_count()
    assert loaded > 10_000  # the index, frozen once loaded
    old = weakref.ref(runtime.knowledge.retriever)
    entry = runtime.knowledge.kb.entries[0]
    await KnowledgeService(runtime.store.redis).add_questions(entry.id, ["a wording nobody used before"], "t")
    gc.collect()  # the edit's own garbage (the collector stays off for the reload)
    assert await runtime.reload_knowledge()
    for _ in range(100):  # the executor thread lets go of the old retriever a moment after the reload
        if old() is None:
            break
        await asyncio.sleep(0.02)
    assert old() is None  # freed by reference counting: frozen, it would otherwise be kept for good
    assert gc.get_freeze_count() > loaded * 0.9
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        gc.unfreeze()
        gc.collect()
        assert [o for o in gc.garbage if type(o).__module__.startswith(("knowledge", "intents", "bot"))] == []
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        await runtime.close()
