"""What serving ``memory://`` with fakeredis costs, against the alternatives (issue 13).

    python -m bench.memory_store                       # redis://127.0.0.1:6379/5 for the comparison
    python -m bench.memory_store --redis redis://127.0.0.1:6379/7

Measures (medians): fakeredis's import time and resident memory (with a Lua script run, as
Kefu's turns do) in a process that already imported redis-py; a warm ``kefu serve`` start on
``memory://`` and on a real Redis (seconds until it answers, RSS); and what a private
``redis-server`` — the only way to keep ``memory://`` working without fakeredis — takes to start
and how much memory it holds.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import redis

from bench.startup import rss_mb, start
from tests.browser import free_port

_PROBE = """
import asyncio, resource, sys, time
import redis.asyncio, bot.server  # what kefu serve imports either way
def rss():
    return int(next(l for l in open('/proc/self/status') if l.startswith('VmRSS')).split()[1]) / 1024
before, t = rss(), time.perf_counter()
import fakeredis
imported = time.perf_counter() - t
async def use():
    r = fakeredis.FakeAsyncRedis(decode_responses=True)
    await r.eval("return redis.call('INCR', KEYS[1])", 1, "k")
asyncio.run(use())
print(imported, rss() - before)
"""


def probe() -> tuple[float, float]:
    out = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True, check=True).stdout
    seconds, mb = out.split()
    return float(seconds), float(mb)


def redis_server() -> tuple[float, float]:
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("redis-server is needed for the comparison")
    port = free_port()
    begun = time.perf_counter()
    proc = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while True:
            try:
                redis.Redis(port=port, socket_connect_timeout=0.2).ping()
                break
            except redis.exceptions.ConnectionError:
                time.sleep(0.005)
        seconds = time.perf_counter() - begun
        return seconds, rss_mb(proc.pid)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def median(pairs: list[tuple[float, float]]) -> tuple[float, float]:
    return statistics.median(p[0] for p in pairs), statistics.median(p[1] for p in pairs)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/5")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    seconds, mb = median([probe() for _ in range(max(5, args.runs))])
    print(f"fakeredis import: {seconds * 1000:.0f} ms, +{mb:.1f} MB RSS (imported and one Lua script run)")
    with tempfile.TemporaryDirectory(prefix="kefu-memstore-") as folder:
        cache = Path(folder)
        start(cache)  # builds the index cache: the runs below are warm starts
        for store in ("memory://", args.redis):
            seconds, mb = median([start(cache, f"store: {{url: '{store}'}}\n") for _ in range(args.runs)])
            print(f"kefu serve on {store}: answers after {seconds:.2f} s, RSS {mb:.0f} MB (warm, shipped FAQ)")
    seconds, mb = median([redis_server() for _ in range(max(5, args.runs))])
    print(f"private redis-server: answers PING after {seconds * 1000:.0f} ms, RSS {mb:.1f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
