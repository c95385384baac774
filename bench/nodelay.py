"""TCP_NODELAY with ``--workers N``, A/B in one run: the bare app (``bench.bare_app``) served by
``uvicorn --workers 2`` as uvicorn binds the socket, and by :func:`bot.workers.serve_workers`
(Kefu's listener with TCP_NODELAY), both at once; keep-alive requests alternate between them.

    python -m bench.nodelay            # 2 workers, 300 requests each
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import time

import httpx

from bench.load import ROOT, free_port, stop_server

SERVE_WITH_KEFU = ("import sys; from bot.workers import serve_workers; "
                   "serve_workers('bench.bare_app:app', int(sys.argv[1]), '127.0.0.1', int(sys.argv[2]), "
                   "log_level='warning')")


def start(cmd: list[str], port: int, workers: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    pids: set[int] = set()
    deadline = time.monotonic() + 60
    while len(pids) < workers:
        assert proc.poll() is None and time.monotonic() < deadline, f"{cmd} did not start"
        try:
            pids.add(httpx.get(f"http://127.0.0.1:{port}/healthz", headers={"Connection": "close"}).json()["worker_pid"])
        except httpx.HTTPError:
            time.sleep(0.1)
    return proc


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def measure(ports: dict[str, int], requests: int) -> dict[str, list[float]]:
    """Keep-alive POSTs through httpx's asyncio client (as ``bench.load`` sends them), alternating."""
    clients = {name: httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") for name, port in ports.items()}
    latencies: dict[str, list[float]] = {name: [] for name in ports}
    try:
        for i in range(requests + 20):
            for name, client in clients.items():
                started = time.perf_counter()
                r = await client.post("/api/chat", json={"session": f"nodelay-{i % 10}", "text": "hi"})
                r.raise_for_status()
                if i >= 20:
                    latencies[name].append((time.perf_counter() - started) * 1000)
    finally:
        for client in clients.values():
            await client.aclose()
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/13")
    args = parser.parse_args()
    ports = {"uvicorn binds": free_port(), "kefu binds (TCP_NODELAY)": free_port()}
    cmds = {
        "uvicorn binds": [sys.executable, "-m", "uvicorn", "bench.bare_app:app", "--workers", str(args.workers),
                          "--port", str(ports["uvicorn binds"]), "--log-level", "warning"],
        "kefu binds (TCP_NODELAY)": [sys.executable, "-c", SERVE_WITH_KEFU, str(args.workers),
                                     str(ports["kefu binds (TCP_NODELAY)"])],
    }
    procs = [start(cmds[name], ports[name], args.workers) for name in cmds]
    try:
        latencies = asyncio.run(measure(ports, args.requests))
        for name, values in latencies.items():
            print(f"  {name:<28} p50 {pct(values, 0.5):6.1f} ms   p99 {pct(values, 0.99):6.1f} ms   "
                  f"({len(values)} keep-alive requests, {args.workers} workers)")
    finally:
        for proc in procs:
            stop_server(proc)


if __name__ == "__main__":
    main()
