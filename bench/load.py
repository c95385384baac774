"""Load benchmark: simulated customers on loopback against real ``kefu serve`` workers and a real
Redis, side by side with (a) a bare ASGI endpoint doing the same Redis reads/writes and (b) the
intent layer alone, for 1, 2 and 4 workers.

    python -m bench.load                       # full run (about 5 minutes)
    python -m bench.load --workers 1 2 --customers 16 --messages 5   # quicker
    python -m bench.load --metrics-cost --workers 2                   # metrics on vs off, side by side

Every customer sends its messages one after another (a reply before the next question), all
customers at once.  Messages are the shop dev questions with a number appended, so no two are
the same text (no embedding-cache hits); the cache-hit rows then repeat questions already asked,
once with httpx and once with the standard library's HTTP client (less client overhead).
Uses Redis database 13 (``--redis``) and deletes only Kefu's keys there.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import multiprocessing
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import redis

from bot import keys

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("KEFU_BENCH_DATA", ROOT.parent / "shared" / "data"))
CACHE = Path(os.environ.get("KEFU_BENCH_CACHE", Path.home() / ".cache" / "kefu-bench"))


@dataclass(frozen=True)
class Result:
    messages: int
    seconds: float
    latencies_ms: list[float]
    cpu_seconds: float | None = None  # the server's CPU time over the timed messages, when metered

    @property
    def rate(self) -> float:
        return self.messages / self.seconds

    @property
    def cpu_ms(self) -> float:
        """The server's CPU time per message (ms), NaN when not metered."""
        return float("nan") if self.cpu_seconds is None else self.cpu_seconds * 1000 / self.messages

    def pct(self, q: float) -> float:
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def questions() -> list[str]:
    cases = [json.loads(line) for line in (DATA / "eval" / "shop-dev-cases.jsonl").read_text("utf-8").splitlines()
             if line.strip()]
    return [c["text"] for c in cases if c["expect"] not in ("handoff", "no-answer")]


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wipe(url: str) -> None:
    client = redis.Redis.from_url(url)
    for key in client.scan_iter(match=f"{keys.PREFIX}*", count=1000):
        client.delete(key)


def start_server(cmd: list[str], port: int, workers: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    """Start ``cmd``; return once every one of its workers has answered /healthz."""
    # The log goes to a file, not a pipe: nobody reads a pipe while the benchmark runs, and a
    # worker blocks on a full one (one log line per turn fills 64 KB in a few hundred turns).
    log = tempfile.TemporaryFile()  # noqa: SIM115  (lives as long as the server; closed with it)
    proc = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=log)
    base = f"http://127.0.0.1:{port}"
    pids: set[int] = set()
    deadline = time.monotonic() + 300
    while len(pids) < workers:
        if proc.poll() is not None:
            log.seek(0)
            raise RuntimeError(f"{' '.join(cmd[:5])} exited: {log.read().decode(errors='replace')[-2000:]}")
        if time.monotonic() > deadline:
            stop_server(proc)
            raise RuntimeError(f"only {len(pids)} of {workers} workers became healthy")
        try:
            r = httpx.get(f"{base}/healthz", timeout=2, headers={"Connection": "close"})
            if r.status_code == 200:
                pids.add(r.json()["worker_pid"])
                continue
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    return proc


def process_tree(root: int) -> list[int]:
    """``root`` and every live process below it (uvicorn's supervisor, its workers)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:  # exited meanwhile
                continue
            children.setdefault(int(stat.rsplit(")", 1)[1].split()[1]), []).append(int(entry))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def cpu_seconds(root: int) -> float:
    """CPU time of ``root`` and its descendants, from each live thread's
    ``/proc/<pid>/task/<tid>/schedstat`` (nanoseconds on CPU; ``/proc/<pid>/stat`` counts 10 ms
    ticks, too coarse for a turn of 1-2 ms).  Unlike wall-clock time it hardly moves with the
    box's load: a turn costs the same CPU whether it waits for a core or not."""
    total = 0
    for pid in process_tree(root):
        try:
            tasks = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        for tid in tasks:
            try:
                total += int(Path(f"/proc/{pid}/task/{tid}/schedstat").read_text().split()[0])
            except (OSError, IndexError, ValueError):
                continue
    return total / 1e9


@dataclass(frozen=True)
class Served:
    """A running server: its base URL and the process whose tree's CPU time is the server's."""

    base: str
    pid: int

    def cpu(self) -> float:
        return cpu_seconds(self.pid)


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()


@asynccontextmanager
async def server(cmd: list[str], port: int, workers: int, env: dict[str, str] | None = None
                 ) -> AsyncIterator[Served]:
    """The server while it runs (started in a thread: this loop may serve a stand-in)."""
    proc = await asyncio.to_thread(start_server, cmd, port, workers, env or {})
    try:
        yield Served(f"http://127.0.0.1:{port}", proc.pid)
    finally:
        await asyncio.to_thread(stop_server, proc)


Send = Callable[[httpx.AsyncClient, int, int], Awaitable[httpx.Response]]


def web_chat(text_of: Callable[[int, int], str], tag: str, fresh_sessions: bool = False) -> Send:
    """A web-chat customer; ``fresh_sessions``: each message starts a new conversation (repeating a
    question inside one conversation is, rightly, a handoff signal)."""
    def send(client: httpx.AsyncClient, c: int, i: int) -> Awaitable[httpx.Response]:
        return client.post("/api/chat", json={"session": f"customer-{tag}-{c}-{i if fresh_sessions else 0}",
                                              "text": text_of(c, i)})
    return send


async def drive(base: str, customers: int, messages: int, send: Send, untimed: int = 0,
                meter: Callable[[], float] | None = None) -> Result:
    """Every customer sends its messages one after another, all customers at once; each
    customer's first ``untimed`` messages are sent over its connection but not counted
    (``untimed`` only with one customer when metered: ``meter`` is the server's CPU clock, read
    around the timed messages)."""
    latencies: list[float] = []
    limits = httpx.Limits(max_connections=customers, max_keepalive_connections=customers)
    async with httpx.AsyncClient(base_url=base, timeout=120, limits=limits) as client:

        async def customer(c: int) -> None:
            for i in range(untimed):
                (await send(client, c, i)).raise_for_status()
            for i in range(untimed, untimed + messages):
                started = time.perf_counter()
                r = await send(client, c, i)
                latencies.append((time.perf_counter() - started) * 1000)
                r.raise_for_status()

        started = time.perf_counter()
        cpu = meter() if meter is not None and not untimed else 0.0
        await asyncio.gather(*(customer(c) for c in range(customers)))
        elapsed = time.perf_counter() - started
        spent = meter() - cpu if meter is not None and not untimed else None
    return Result(customers * messages, elapsed, latencies, spent)


def plain_http_turns(base: str, texts: list[str], untimed: int = 0, tag: str = "plain",
                     meter: Callable[[], float] | None = None) -> Result:
    """One customer asking ``texts`` over one keep-alive connection with the standard library's
    HTTP client, each in a new session: the server's latency with little client overhead (httpx
    with asyncio adds 1–3 ms per request on this box, more than the turn itself).  The first
    ``untimed`` texts are asked but not counted; ``meter`` (the server's CPU clock) is read
    around the counted ones."""
    host, port = base.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=120)
    latencies = []
    started = time.perf_counter()
    cpu = meter() if meter is not None else 0.0
    try:
        for i, text in enumerate(texts):
            if i == untimed:
                started = time.perf_counter()
                cpu = meter() if meter is not None else 0.0
            body = json.dumps({"session": f"{tag}-customer-{i}", "text": text})
            sent = time.perf_counter()
            connection.request("POST", "/api/chat", body, {"Content-Type": "application/json"})
            response = connection.getresponse()
            response.read()
            if i >= untimed:
                latencies.append((time.perf_counter() - sent) * 1000)
            if response.status != 200:
                raise RuntimeError(f"/api/chat answered {response.status}")
        elapsed = time.perf_counter() - started
        spent = meter() - cpu if meter is not None else None
    finally:
        connection.close()
    return Result(len(latencies), elapsed, latencies, spent)


SECRET = "bench-secret"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"


def kefu_config(directory: Path, redis_url: str, telegram_base_url: str, metrics: bool = True) -> Path:
    from tests.bot.channels.telegram_standin import TOKEN

    config = directory / f"kefu-bench-{'metrics' if metrics else 'nometrics'}.yaml"
    config.write_text(
        f"store:\n  url: {redis_url}\nknowledge:\n  path: {DATA / 'eval' / 'shop-kb.yaml'}\n  cache_dir: {CACHE}\n"
        "security:\n  rate_limit_per_minute: 0\n"  # every simulated customer comes from 127.0.0.1:
        "  new_web_sessions_per_minute_per_address: 0\n  new_web_sessions_per_minute: 0\n"
        f"metrics:\n  enabled: {str(metrics).lower()}\n"
        f"channels:\n  telegram:\n    enabled: true\n    token: \"{TOKEN}\"\n    mode: webhook\n"
        f"    webhook_url: https://kefu.example/webhooks/telegram\n    webhook_secret: {SECRET}\n"
        f"    base_url: {telegram_base_url}\n", encoding="utf-8")
    return config


def _decide_share(args: tuple[str, list[str], list[str]]) -> tuple[int, float, list[float]]:
    """One process of the intent-layer-alone run: build (from the disk cache), then decide."""
    from bot.config import Config, IntentsConfig, KnowledgeConfig
    from bot.runtime import build_live_layer
    from bot.types import Conversation, InboundMessage
    from knowledge.schema import load_kb

    kb_path, warm, texts = args
    config = Config(knowledge=KnowledgeConfig(cache_dir=str(CACHE)), intents=IntentsConfig())
    layer, _ = build_live_layer(load_kb(Path(kb_path)), config)
    conv = Conversation.start(InboundMessage("web", "u", "u", "", "m"))
    for text in ["warm up", *warm]:
        layer.decide(text, conv)
    latencies = []
    started = time.perf_counter()
    for text in texts:
        t = time.perf_counter()
        layer.decide(text, conv)
        latencies.append((time.perf_counter() - t) * 1000)
    return len(texts), time.perf_counter() - started, latencies


def intent_layer_alone(workers: int, texts: list[str], warm: Sequence[str] = ()) -> Result:
    """``workers`` processes deciding their share of ``texts`` in parallel (same cores as the
    servers), after deciding ``warm`` once (untimed)."""
    shares = [(str(DATA / "eval" / "shop-kb.yaml"), list(warm), texts[i::workers]) for i in range(workers)]
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(workers) as pool:
        started = time.perf_counter()
        parts = pool.map(_decide_share, shares)
        wall = time.perf_counter() - started
    # wall includes each process loading the model and index; the rate uses the deciding time only
    seconds = max(part[1] for part in parts) if parts else wall
    return Result(sum(part[0] for part in parts), seconds, [ms for part in parts for ms in part[2]])


def row(name: str, result: Result, reference: Result | None = None) -> str:
    ratio = f"{result.rate / reference.rate:6.0%}" if reference else "      "
    cpu = f"   CPU {result.cpu_ms:6.3f} ms/msg" if result.cpu_seconds is not None else ""
    return (f"  {name:<40} {result.rate:8.1f} msg/s {ratio}   p50 {result.pct(0.5):7.1f} ms"
            f"   p99 {result.pct(0.99):7.1f} ms{cpu}   ({result.messages} messages)")


async def run_workers(workers: int, args: argparse.Namespace, directory: Path) -> None:
    from tests.bot.channels.telegram_standin import BotApiStandIn

    pool = questions()

    def unique(c: int, i: int, salt: str = "") -> str:
        n = c * args.messages + i
        return f"{pool[n % len(pool)]} {salt}{n}"

    def again(c: int, i: int) -> str:
        return pool[(c + i) % 20]

    texts = [unique(c, i) for c in range(args.customers) for i in range(args.messages)]
    print(f"\n{workers} worker(s)")
    alone = await asyncio.to_thread(intent_layer_alone, workers, texts)
    print(row("intent layer alone", alone))
    if workers == args.workers[0]:
        repeated = [again(0, i) for i in range(200)]
        cached = await asyncio.to_thread(intent_layer_alone, 1, repeated, repeated[:20])
        print(row("intent layer alone, repeated questions", cached))

    wipe(args.redis)
    port = free_port()
    bare_cmd = [sys.executable, "-m", "uvicorn", "bench.bare_app:app", "--port", str(port),
                "--workers", str(workers), "--log-level", "warning"]
    async with server(bare_cmd, port, workers, {"KEFU_BENCH_REDIS": args.redis}) as bare_server:
        bare = await drive(bare_server.base, args.customers, args.messages, web_chat(unique, "bare"))
    print(row("bare ASGI + same Redis keys", bare))

    async with BotApiStandIn() as telegram:
        config = kefu_config(directory, args.redis, telegram.base_url)
        wipe(args.redis)
        port = free_port()
        cmd = [sys.executable, "-m", "bot", "--config", str(config), "serve", "--port", str(port),
               "--workers", str(workers)]
        async with server(cmd, port, workers) as kefu:
            base = kefu.base
            full = await drive(base, args.customers, args.messages, web_chat(unique, "kefu"))
            print(row("kefu serve: web chat", full, alone))

            def update(client: httpx.AsyncClient, c: int, i: int) -> Awaitable[httpx.Response]:
                body = telegram.message_update(unique(c, i, "t"), chat_id=100_000 + c)  # not yet in any cache
                return client.post("/webhooks/telegram", json=body, headers={SECRET_HEADER: SECRET})

            tg = await drive(base, args.customers, args.messages, update)
            print(row("kefu serve: Telegram webhook", tg, alone))
            # A keep-alive connection stays with one worker: its first pass over the 20
            # questions fills that worker's vector memory (untimed), then every turn is a hit.
            hits = await drive(base, 1, 200, web_chat(again, "hits", True), untimed=20)
            print(row("kefu serve: repeated questions, httpx", hits))
            lean = await asyncio.to_thread(plain_http_turns, base, [again(0, i) for i in range(1020)], 20)
            print(row("kefu serve: repeated questions, plain", lean))
    wipe(args.redis)


def median(values: Sequence[float]) -> float:
    ordered = sorted(values)
    return ordered[len(ordered) // 2]


def compare(name: str, results: dict[str, list[Result]], a: str = "on", b: str = "off") -> None:
    """The medians over rounds of ``a`` and ``b``: throughput, and the server's CPU per message
    (steady under load, where the throughput of one round swings by tens of percent)."""
    rate = {state: median([res.rate for res in results[state]]) for state in (a, b)}
    cpu = {state: median([res.cpu_ms for res in results[state]]) for state in (a, b)}
    pooled = {state: sum(res.cpu_seconds or 0.0 for res in results[state]) * 1000
              / sum(res.messages for res in results[state]) for state in (a, b)}
    print(f"  {name}: median msg/s {a} {rate[a]:.1f}, {b} {rate[b]:.1f} ({rate[a] / rate[b] - 1:+.1%}); "
          f"server CPU per message, median {a} {cpu[a]:.3f} ms, {b} {cpu[b]:.3f} ms "
          f"({cpu[a] / cpu[b] - 1:+.1%}); all rounds {pooled[a]:.3f} vs {pooled[b]:.3f} ms "
          f"({pooled[a] / pooled[b] - 1:+.1%})")


async def metrics_cost(workers: int, args: argparse.Namespace, directory: Path) -> None:
    """Throughput and the servers' CPU time per message with ``metrics.enabled`` on and off, side
    by side: both servers run at once and the rounds alternate between them (A/B, then B/A), so
    drift in the box's load hits both alike."""
    from tests.bot.channels.telegram_standin import BotApiStandIn

    pool = questions()
    print(f"\n{workers} worker(s), metrics on vs off, {args.rounds} alternating rounds "
          f"(load average {os.getloadavg()[0]:.1f})")
    rows: dict[str, list[Result]] = {"on": [], "off": []}
    repeated: dict[str, list[Result]] = {"on": [], "off": []}
    async with BotApiStandIn() as telegram:
        wipe(args.redis)
        ports = {"on": free_port(), "off": free_port()}
        cmds = {state: [sys.executable, "-m", "bot", "--config",
                        str(kefu_config(directory, args.redis, telegram.base_url, metrics=state == "on")),
                        "serve", "--port", str(ports[state]), "--workers", str(workers)] for state in ports}
        async with server(cmds["on"], ports["on"], workers) as on, server(cmds["off"], ports["off"], workers) as off:
            servers = {"on": on, "off": off}
            for r in range(args.rounds):
                for state in (("on", "off") if r % 2 == 0 else ("off", "on")):
                    def unique(c: int, i: int, salt: str = f"{state}{r}") -> str:
                        n = c * args.messages + i
                        return f"{pool[n % len(pool)]} {salt}-{n}"

                    served = servers[state]
                    result = await drive(served.base, args.customers, args.messages,
                                         web_chat(unique, f"cost-{state}-{r}"), meter=served.cpu)
                    rows[state].append(result)
                    print(row(f"round {r + 1}: web chat, metrics {state}", result))
                    texts = [pool[i % 20] for i in range(args.repeats + 20)]
                    hits = await asyncio.to_thread(plain_http_turns, served.base, texts, 20, f"plain-{state}-{r}",
                                                   served.cpu)
                    repeated[state].append(hits)
                    print(row(f"round {r + 1}: repeated questions, plain, metrics {state}", hits))
    compare("web chat (new questions)", rows)
    compare("repeated questions", repeated)
    print(f"  load average at the end {os.getloadavg()[0]:.1f}")
    wipe(args.redis)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--customers", type=int, default=32)
    parser.add_argument("--messages", type=int, default=8, help="messages per customer")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/13")
    parser.add_argument("--metrics-cost", action="store_true",
                        help="only compare throughput with metrics on and off (alternating rounds)")
    parser.add_argument("--rounds", type=int, default=4, help="rounds per setting with --metrics-cost")
    parser.add_argument("--repeats", type=int, default=500, help="repeated questions per round with --metrics-cost")
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} CPUs, python {sys.version.split()[0]}; {args.customers} customers × "
          f"{args.messages} messages = {args.customers * args.messages} per run; Redis {args.redis}")
    with tempfile.TemporaryDirectory() as tmp:
        for workers in args.workers:
            asyncio.run((metrics_cost if args.metrics_cost else run_workers)(workers, args, Path(tmp)))
    print("\nratio column: throughput / the intent layer alone on the same number of processes")


if __name__ == "__main__":
    main()
