"""Fault drill for the web chat: nothing lost, nothing answered twice, while a worker is SIGKILLed
mid-turn and restarts while Redis is down, and Redis is SIGKILLed (and restarted from its AOF)
and SIGSTOPped.

    python -m bench.drill_web                      # 30 customers x 17 messages, about a minute
    python -m bench.drill_web --customers 40 --messages 20

``kefu serve --workers 2`` runs on a private redis-server (``appendfsync always``, so a
SIGKILLed Redis keeps what it acknowledged).  Every customer is a browser-like client: a
visitor token, then one message after another, each with its own id, resent after a network
error, a 503 or a 409 "still being answered" until it gets 200 — as the chat page does.  At the
end each transcript is read back: a message is *lost* if its line is not there (or the client
gave up), *answered twice* if its line is there more than once.  The whole drill has a deadline:
past it, it stops and says what it was waiting for, with the end of the server's log.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import redis

ROOT = Path(__file__).resolve().parents[1]
# Order questions run a business action against a slow order API (0.6 s), so turns are long
# enough for a SIGKILL to land in the middle of some; the others are quick FAQ answers.
QUESTIONS = ["我的订单 A123456 到哪了", "怎么退货", "Where is my order A654321?", "How do I return an item?",
             "支持哪些付款方式", "查订单 A777777"]
ORDER_API_SECONDS = 0.6


class _SlowOrderApi(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        time.sleep(ORDER_API_SECONDS)
        body = json.dumps({"status": "in_transit", "carrier": "顺丰", "tracking_number": "SF100200300",
                           "eta": "明天"}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        return


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: object, client_address: object) -> None:
        return  # a worker killed mid-request closes its connection: expected here


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Redis:
    """A private redis-server that can be killed, restarted from its AOF, stopped and continued."""

    def __init__(self, directory: Path) -> None:
        self.port = _free_port()
        self.directory = directory
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed")
        self.proc = subprocess.Popen([binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                                      "--appendonly", "yes", "--appendfsync", "always", "--dir", str(self.directory)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while True:
            try:
                redis.Redis(port=self.port, socket_connect_timeout=0.5).ping()
                return
            except redis.exceptions.ConnectionError:
                if time.monotonic() > deadline:
                    raise RuntimeError("redis-server did not start") from None
                time.sleep(0.05)

    def signal(self, sig: signal.Signals) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)
        if sig is signal.SIGKILL:
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.terminate()
            self.proc.wait(timeout=10)


@dataclass
class Counts:
    customers: int = 0
    sent: int = 0
    answered: int = 0
    lost: int = 0
    answered_twice: int = 0
    resends: int = 0
    told_to_retry_in_progress: int = 0
    unavailable_503: int = 0
    network_errors: int = 0
    cut_off_by_worker_kill: int = 0
    gave_up: list[str] = field(default_factory=list)
    faults: list[str] = field(default_factory=list)
    seconds: float = 0.0


async def _customer(base: str, number: int, messages: int, counts: Counts, sent_ids: dict[str, list[str]],
                    in_flight: set[str]) -> None:
    async with httpx.AsyncClient(base_url=base, timeout=20) as http:
        while True:
            try:
                token = (await http.post("/api/chat/visitor", json={})).json()["token"]
                break
            except (httpx.HTTPError, ValueError, KeyError):
                await asyncio.sleep(0.3)
        sent_ids[token] = []
        for n in range(messages):
            message_id = f"c{number}-m{n}"
            text = f"{QUESTIONS[(number + n) % len(QUESTIONS)]}"
            counts.sent += 1
            sent_ids[token].append(message_id)
            deadline = time.monotonic() + 120
            first = True
            while True:
                if not first:
                    counts.resends += 1
                first = False
                in_flight.add(message_id)
                try:
                    r: httpx.Response | None = await http.post("/api/chat", json={"token": token, "text": text, "message_id": message_id},
                                        headers={"Connection": "close"})
                except httpx.HTTPError:
                    counts.network_errors += 1
                    r = None
                finally:
                    in_flight.discard(message_id)
                if r is not None and r.status_code == 200:
                    counts.answered += 1
                    await asyncio.sleep(0.2)  # reading the answer before the next question
                    break
                if r is not None and r.status_code == 409:
                    counts.told_to_retry_in_progress += 1
                elif r is not None and r.status_code == 503:
                    counts.unavailable_503 += 1
                elif r is not None:
                    counts.gave_up.append(f"{message_id}: {r.status_code} {r.text[:100]}")
                    break
                if time.monotonic() > deadline:
                    counts.gave_up.append(f"{message_id}: no answer in 120 s")
                    break
                await asyncio.sleep(0.5)


def _worker_pids(base: str) -> set[int]:
    pids: set[int] = set()
    deadline = time.monotonic() + 30
    while len(pids) < 2 and time.monotonic() < deadline:
        try:
            pids.add(httpx.get(f"{base}/healthz", headers={"Connection": "close"}, timeout=5).json()["worker_pid"])
        except (httpx.HTTPError, ValueError, KeyError):
            time.sleep(0.1)
    return pids


async def _when(counts: Counts, total: int, share: float) -> None:
    while counts.answered < total * share:
        await asyncio.sleep(0.02)


async def _logged(log: Path, text: str, after: int, seconds: float = 60) -> None:
    """Wait until ``text`` appears in the server's log past byte ``after``."""
    deadline = time.monotonic() + seconds
    while text not in log.read_bytes()[after:].decode("utf-8", "replace"):
        if time.monotonic() > deadline:
            raise RuntimeError(f"the server did not log {text!r} in {seconds:.0f} s")
        await asyncio.sleep(0.05)


async def _faults(base: str, store: Redis, counts: Counts, in_flight: set[str], total: int, log: Path) -> None:
    """The faults land while customers are writing: at 15 %, 45 % and 70 % of the messages.

    The first kills a worker mid-turn and Redis right after it, and brings Redis back only once
    the worker's replacement has started and found the store unreachable: the replacement must
    wait for it, not fail its start (which would stop ``kefu serve`` and every worker with it)."""
    pids = await asyncio.to_thread(_worker_pids, base)
    await _when(counts, total, 0.15)
    victim = min(pids)
    cut = len(in_flight)
    logged = log.stat().st_size
    os.kill(victim, signal.SIGKILL)
    store.signal(signal.SIGKILL)
    counts.cut_off_by_worker_kill = cut
    counts.faults.append(f"SIGKILL worker {victim} with {cut} requests in flight, then SIGKILL redis")
    await _logged(log, "is unreachable; waiting for it", logged)
    await asyncio.to_thread(store.start)
    counts.faults.append("the replacement worker waited for redis; redis restarted from AOF")
    await _when(counts, total, 0.45)
    store.signal(signal.SIGKILL)
    counts.faults.append(f"SIGKILL redis with {len(in_flight)} requests in flight; restarted from AOF after 1 s")
    await asyncio.sleep(1)
    await asyncio.to_thread(store.start)
    await _when(counts, total, 0.70)
    store.signal(signal.SIGSTOP)
    counts.faults.append(f"SIGSTOP redis for 4 s with {len(in_flight)} requests in flight")
    await asyncio.sleep(4)
    store.signal(signal.SIGCONT)


def _read_back(base: str, sent_ids: dict[str, list[str]], counts: Counts) -> None:
    for token, ids in sent_ids.items():
        data = httpx.get(f"{base}/api/chat/messages", headers={"X-Kefu-Visitor": token}, timeout=30).json()
        stored = [m["message_id"] for m in data["messages"] if m["role"] == "customer"]
        seqs = [m["seq"] for m in data["messages"]]
        assert seqs == sorted(set(seqs)), "seq ids must be strictly increasing"
        for message_id in ids:
            copies = stored.count(message_id)
            counts.lost += copies == 0
            counts.answered_twice += copies > 1


def _serve(config: Path, port: int, log: Path, order_api: str) -> subprocess.Popen[bytes]:
    with log.open("a") as out:
        proc = subprocess.Popen([sys.executable, "-m", "bot", "--config", str(config), "serve", "--port", str(port),
                                 "--workers", "2"], cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
                                env={**os.environ, "ORDER_API_URL": order_api})
    deadline = time.monotonic() + 180
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"kefu serve exited: {log.read_text()[-2000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError("kefu serve did not become healthy")
        time.sleep(0.2)


def drill(customers: int, messages: int, workdir: Path, cache_dir: Path, lock_seconds: float = 3.0,
          deadline_seconds: float = 240.0) -> Counts:
    """Run the drill; ``lock_seconds`` is how long a dead worker's claim outlives it."""
    store = Redis(workdir)
    store.start()
    orders = _QuietServer(("127.0.0.1", 0), _SlowOrderApi)
    threading.Thread(target=orders.serve_forever, daemon=True).start()
    config = workdir / "drill.yaml"
    config.write_text(
        f"store:\n  url: {store.url}\n  conversation_lock_seconds: {lock_seconds}\n"
        f"knowledge:\n  cache_dir: {cache_dir}\n  path: {ROOT / 'examples/order_status/knowledge.yaml'}\n"
        "intents:\n  embeddings: false\nactions:\n  module: examples.order_status.actions\n"
        "security:\n  rate_limit_per_minute: 0\n"  # every simulated customer comes from 127.0.0.1:
        "  new_web_sessions_per_minute_per_address: 0\n  new_web_sessions_per_minute: 0\n", encoding="utf-8")
    port, log = _free_port(), workdir / "serve.log"
    server = _serve(config, port, log, f"http://127.0.0.1:{orders.server_address[1]}")
    base = f"http://127.0.0.1:{port}"
    counts = Counts(customers=customers)
    sent_ids: dict[str, list[str]] = {}
    in_flight: set[str] = set()

    async def run() -> None:
        faults = asyncio.create_task(_faults(base, store, counts, in_flight, customers * messages, log))
        writing = [_customer(base, n, messages, counts, sent_ids, in_flight) for n in range(customers)]
        try:
            async with asyncio.timeout(deadline_seconds):
                await asyncio.gather(faults, *writing)  # a failed fault step ends the drill at once
        except Exception as exc:
            reason = f"did not finish in {deadline_seconds:.0f} s" if isinstance(exc, TimeoutError) else repr(exc)
            raise RuntimeError(f"the drill {reason}: {counts}\nend of the server's log:\n"
                               f"{log.read_text(errors='replace')[-3000:]}") from None

    started = time.monotonic()
    try:
        asyncio.run(run())
        counts.seconds = round(time.monotonic() - started, 1)
        _read_back(base, sent_ids, counts)
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
        store.stop()
        orders.shutdown()
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=30)
    parser.add_argument("--messages", type=int, default=17)
    parser.add_argument("--lock-seconds", type=float, default=3.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        cache = Path(os.environ.get("KEFU_BENCH_CACHE", Path.home() / ".cache" / "kefu-bench"))
        counts = drill(args.customers, args.messages, Path(tmp), cache, args.lock_seconds)
    print(json.dumps(counts.__dict__, ensure_ascii=False, indent=2))


if __name__ == "__main__":
    main()
