"""Process-level set-up of ``kefu serve``: the listening socket, native thread pools, metrics files.

* ``--workers N``: uvicorn binds the shared socket itself (``socket.socket(AF_INET)``, protocol
  0), and asyncio sets ``TCP_NODELAY`` only on sockets whose protocol says TCP, so every
  keep-alive response waited for the client's delayed ACK (≈ 40 ms on Linux). The socket is
  bound here with ``TCP_NODELAY`` on the listener; Linux copies it onto every accepted socket.
* BLAS (OpenBLAS under numpy/scikit-learn) starts one thread per core in every process; next
  to a one-thread encoder per worker that only adds contention, so serving processes use one.
* A worker that uvicorn restarts (after a crash) while Redis is down must wait for Redis: a
  worker whose start fails makes uvicorn stop the parent and every other worker with it.
* A serving process's heap is mostly its knowledge index, and Python's cycle collector walks
  all of it, GIL held, whenever enough new objects pile up (a save decoding every entry does
  that): 50–70 ms of stalled event loop at 20,000 entries.  So once the index is loaded or
  reloaded, what is alive is moved out of the collector's reach (:func:`settle_heap`).
"""

from __future__ import annotations

import gc
import logging
import os
import shutil
import signal
import socket
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any

log = logging.getLogger(__name__)

BLAS_THREADS = 1
METRICS_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"  # prometheus_client's own variable


def limit_blas_threads(threads: int = BLAS_THREADS) -> None:
    """Cap the BLAS pools already loaded in this process (numpy, scikit-learn) to ``threads``."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=threads, user_api="blas")


@contextmanager
def stop_requested() -> Iterator[threading.Event]:
    """An event set when SIGTERM or SIGINT arrives while inside; the signal still reaches the
    handler installed before (uvicorn's), so a worker waiting at start-up stops when told to."""
    event = threading.Event()
    if threading.current_thread() is not threading.main_thread():  # signals reach the main thread only
        yield event
        return
    previous: dict[int, Any] = {}

    def handler(sig: int, frame: FrameType | None) -> None:
        event.set()
        chained = previous[sig]
        if callable(chained):
            chained(sig, frame)

    for sig in (signal.SIGTERM, signal.SIGINT):
        previous[sig] = signal.signal(sig, handler)
    try:
        yield event
    finally:
        for number, chained in previous.items():
            signal.signal(number, chained)


_SETTLE_HEAP = False


def settle_heap_after_loads(enabled: bool = True) -> None:
    """Make :func:`settle_heap` act from now on (``kefu serve``'s processes; not tests or the CLI)."""
    global _SETTLE_HEAP
    _SETTLE_HEAP = enabled


def settle_heap() -> None:
    """After a knowledge load or reload: collect the young generations, then ``gc.freeze()``
    every object alive, so full collections no longer walk the index.  Frozen objects are still
    freed by reference counting; a reload leaves no cyclic garbage and a swapped-out index has
    no reference cycles (``tests/bot/test_workers.py``), so nothing is kept that would have been
    freed.  A no-op unless :func:`settle_heap_after_loads` was called."""
    if _SETTLE_HEAP:
        gc.collect(1)
        gc.freeze()


def blas_threads() -> list[int]:
    """The thread count of every BLAS pool loaded in this process (tests, diagnostics)."""
    from threadpoolctl import threadpool_info

    return [int(pool["num_threads"]) for pool in threadpool_info() if pool.get("user_api") == "blas"]


def nodelay_listener(host: str, port: int) -> socket.socket:
    """A bound, inheritable TCP socket with ``TCP_NODELAY`` set (inherited by accepted sockets)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    return for_workers(sock)


def for_workers(sock: socket.socket) -> socket.socket:
    """``sock`` (a bound TCP socket) with ``TCP_NODELAY`` on the listener, which Linux copies onto
    every accepted socket, and inheritable by the worker processes."""
    if sock.family in (socket.AF_INET, socket.AF_INET6):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.set_inheritable(True)
    return sock


def fresh_metrics_dir() -> str:
    """An empty directory for prometheus_client's multiprocess files, named in the environment
    so every worker (spawned after this) writes there; the old counters of a previous run are
    not carried over (Prometheus handles counter resets)."""
    configured = os.environ.get(METRICS_DIR_ENV)
    if configured:
        path = Path(configured)
        if path.exists():
            for item in path.glob("*.db"):
                item.unlink()
        path.mkdir(parents=True, exist_ok=True)
    else:
        path = Path(tempfile.mkdtemp(prefix="kefu-metrics-"))
    os.environ[METRICS_DIR_ENV] = str(path)
    return str(path)


def serve_workers(app: str, workers: int, host: str, port: int, before: Callable[[], None] | None = None,
                  sock: socket.socket | None = None, **options: Any) -> None:
    """``uvicorn.run(app, workers=N, ...)`` on ``sock`` (bound, e.g. by ``kefu serve``'s
    preflight, and given ``TCP_NODELAY`` here) or a socket bound by :func:`nodelay_listener`;
    ``before`` runs in this supervising process once the metrics directory is set (the metrics
    listener); blocks until the workers exit, and closes the socket."""
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    try:
        metrics_dir = fresh_metrics_dir()
        if before is not None:
            before()
        config = uvicorn.Config(app, host=host, port=port, workers=workers, **options)
        if sock is None:
            try:
                sock = nodelay_listener(host, port)
            except OSError as exc:
                from bot.errors import KefuError

                raise KefuError(f"cannot listen on {host}:{port}: {exc}") from None
        else:
            for_workers(sock)
    except BaseException:
        if sock is not None:
            sock.close()
        raise
    try:
        Multiprocess(config, sockets=[sock]).run()
    finally:
        sock.close()
        if "kefu-metrics-" in metrics_dir:
            shutil.rmtree(metrics_dir, ignore_errors=True)
