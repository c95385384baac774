"""The cost of one turn at low load: a repeated question (its vector remembered, decided on the
event loop) asked by one customer over one keep-alive connection, against several ``kefu serve``
set-ups running at once; the rounds rotate between them so the box's load hits each alike.

    python -m bench.turncost                          # 1 vs 2 workers, metrics on
    python -m bench.turncost --metrics on off         # and each with metrics off
    python -m bench.turncost --workers 2 --metrics on off --copies 2   # with an A/A control
    python -m bench.turncost --profile 2              # py-spy (if installed) on a 2-worker server's worker

Reports latency (wall clock: moves with the box's load, whose average is printed next to it) and
the server's CPU time per turn (every process of the server, from ``/proc``: steady under load).
Uses Redis database 13 (``--redis``) and deletes only Kefu's keys there.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path

from bench.load import (
    ROOT,
    Result,
    Served,
    free_port,
    kefu_config,
    median,
    plain_http_turns,
    process_tree,
    questions,
    row,
    server,
    wipe,
)


@dataclass(frozen=True)
class Setup:
    workers: int
    metrics: bool
    copy: int = 0  # --copies: two servers set up alike show how far apart servers differ by themselves

    @property
    def name(self) -> str:
        copy = f" (server {self.copy + 1})" if self.copy else ""
        return f"{self.workers} worker{'s' if self.workers > 1 else ''}, metrics {'on' if self.metrics else 'off'}{copy}"


def summary(name: str, results: list[Result]) -> str:
    latencies = [ms for res in results for ms in res.latencies_ms]
    pooled = Result(len(latencies), sum(res.seconds for res in results), latencies,
                    sum(res.cpu_seconds or 0.0 for res in results))
    return (f"  {name:<28} p50 {pooled.pct(0.5):5.2f} ms  p99 {pooled.pct(0.99):6.2f} ms "
            f"(round p99s {min(r.pct(0.99) for r in results):.1f}–{max(r.pct(0.99) for r in results):.1f})  "
            f"{pooled.rate:6.1f} msg/s   server CPU {pooled.cpu_ms:.3f} ms/turn "
            f"(round median {median([r.cpu_ms for r in results]):.3f})   {pooled.messages} turns")


def workers_of(served: Served) -> list[int]:
    """The processes that answer requests: the server itself (one worker) or its children."""
    tree = process_tree(served.pid)
    return tree[1:] or tree


def profile(served: Served, texts: list[str], seconds: int, out: Path) -> None:
    """py-spy samples (on-CPU only) of every worker while one customer asks ``texts`` again and
    again; prints the functions holding most samples, inclusive and own."""
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(py_spy).exists():
        raise SystemExit("--profile needs py-spy (pip install py-spy)")
    pids = [pid for pid in workers_of(served) if "bot" in Path(f"/proc/{pid}/cmdline").read_text(errors="replace")
            or "multiprocessing" in Path(f"/proc/{pid}/cmdline").read_text(errors="replace")]
    plain_http_turns(served.base, texts[:20], 0, "profile-warm")  # remember the vectors first (untimed)
    recorders = [subprocess.Popen([py_spy, "record", "-p", str(pid), "-d", str(seconds), "-r", "500", "-f", "raw",
                                   "-o", str(out.with_suffix(f".{pid}.txt")), "--nonblocking"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for pid in pids]
    rounds = 0
    while any(rec.poll() is None for rec in recorders):
        plain_http_turns(served.base, texts, 20, f"profile-{rounds}")
        rounds += 1
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    for pid in pids:
        path = out.with_suffix(f".{pid}.txt")
        if not path.exists():
            continue
        for line in path.read_text().splitlines():
            stack, _, count = line.rpartition(" ")
            frames = stack.split(";")
            n = int(count)
            total += n
            own[frames[-1]] += n
            for frame in set(frames):
                inclusive[frame] += n
    print(f"\nprofile: {total} samples of {len(pids)} process(es), raw stacks in {out.parent}")
    for title, counts in (("inclusive", inclusive), ("own", own)):
        print(f"  top {title}:")
        for frame, n in counts.most_common(40):
            print(f"    {n / max(total, 1):6.1%}  {frame}")


RECORD = """
import os, sys, tempfile, time
if sys.argv[1] == "multiprocess":
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="kefu-metrics-")
from bot import metrics
from bot.types import Action, Conversation, Decision, InboundMessage, Intent, TurnResult
metrics.configure(sys.argv[2] == "on")
msg = InboundMessage("web", "u", "u", "how do returns work", "m")
result = TurnResult((), Conversation.start(msg), Decision(Action.ANSWER, "en", Intent.FAQ, 0.9, entry_id="returns"))
n = int(sys.argv[3])
for i in range(n // 10):  # warm: the labelled series and their files exist
    metrics.observe_turn("web", result, 0.002)
    metrics.observe_decision(0.0004)
best = float("inf")
for _ in range(5):
    started = time.process_time()
    for i in range(n):
        metrics.observe_turn("web", result, 0.002)
        metrics.observe_decision(0.0004)
    best = min(best, time.process_time() - started)
# Cold: one turn at a time, with 8 MB touched in between as a turn's other work (and the box's
# other processes) would, minus the same with nothing recorded: what a turn really pays.
junk = bytearray(8 << 20)
cold = [0.0, 0.0]
for i in range(600):
    for record in (True, False):
        for j in range(0, len(junk), 4096):
            junk[j] = i & 255
        started = time.process_time()
        if record:
            metrics.observe_turn("web", result, 0.002)
            metrics.observe_decision(0.0004)
        cold[record] += time.process_time() - started
print(best / n * 1e6, (cold[1] - cold[0]) / 600 * 1e6)
"""


def record_cost(calls: int) -> None:
    """CPU time of recording one turn (``observe_turn`` + ``observe_decision``), per mode, each
    in a fresh process: hot (the best of 5 passes of ``calls`` turns in a loop) and cold (one turn
    at a time with the caches dirtied in between, less the same without recording)."""
    print(f"recording one turn's metrics, CPU µs per turn, hot (best of 5 × {calls:,}) / cold (600); "
          f"load average {os.getloadavg()[0]:.1f}:")
    for mode in ("multiprocess", "one process"):
        for state in ("on", "off"):
            out = subprocess.run([sys.executable, "-c", RECORD, mode, state, str(calls)], cwd=ROOT, check=True,
                                 capture_output=True, text=True).stdout
            hot, cold = (float(value) for value in out.split())
            print(f"  {mode:<13} metrics {state:<3} hot {hot:6.2f} µs   cold {cold:6.1f} µs")


CLIENT = ("import json, sys; from bench.load import plain_http_turns; "
          "r = plain_http_turns(sys.argv[1], json.loads(sys.argv[2]), 20, sys.argv[3]); print(r.pct(0.5), r.pct(0.99))")


async def cprofile(args: argparse.Namespace, directory: Path) -> str:
    """cProfile of one worker, in this process, answering one customer (another process) asking
    repeated questions: calls per turn are exact and steady whatever the box's load; the times
    beside them move with it.  ``--multiprocess``: metrics as ``--workers N`` records them."""
    import cProfile
    import io
    import pstats

    import uvicorn

    from bot.app import compose
    from bot.cli import _uvicorn_log_config
    from bot.config import load_config
    from bot.logs import configure_logging
    from tests.bot.channels.telegram_standin import BotApiStandIn

    pool = questions()
    texts = [pool[i % 20] for i in range(args.turns + 20)]
    async with BotApiStandIn() as telegram:
        wipe(args.redis)
        config = load_config(kefu_config(directory, args.redis, telegram.base_url, metrics=args.cprofile == "on"))
        configure_logging(mask=config.security.mask_logs, fmt=config.logging.format)  # as a worker logs
        kefu = compose(config)
        port = free_port()
        uv = uvicorn.Server(uvicorn.Config(kefu.asgi, host="127.0.0.1", port=port, log_level="info", lifespan="on",
                                           log_config=_uvicorn_log_config(config)))
        serving = asyncio.create_task(uv.serve())
        while not uv.started:
            await asyncio.sleep(0.05)
        base = f"http://127.0.0.1:{port}"

        async def client(tag: str, asked: list[str]) -> None:
            proc = await asyncio.create_subprocess_exec(sys.executable, "-c", CLIENT, base, json.dumps(asked), tag,
                                                        cwd=ROOT)
            await proc.wait()

        await client("warm", texts[:40])
        profiler = cProfile.Profile()
        profiler.enable()
        await client("profiled", texts)
        profiler.disable()
        uv.should_exit = True
        await serving
        wipe(args.redis)
    turns = len(texts)
    out = directory / "turn.prof"
    profiler.dump_stats(out)
    report = io.StringIO()
    stats = pstats.Stats(str(out), stream=report)
    calls = sum(entry[1] for entry in stats.stats.values())  # type: ignore[attr-defined]
    report.write(f"\n{turns} turns profiled: {calls / turns:.0f} Python function calls per turn; stats in {out}\n")
    stats.sort_stats("tottime").print_stats(35)
    stats.sort_stats("cumulative").print_stats(70)
    return report.getvalue()


async def run(args: argparse.Namespace, directory: Path) -> None:
    from tests.bot.channels.telegram_standin import BotApiStandIn

    setups = [Setup(w, m == "on", c) for c in range(args.copies) for m in args.metrics for w in args.workers]
    pool = questions()
    texts = [pool[i % 20] for i in range(args.turns + 20)]
    results: dict[Setup, list[Result]] = {setup: [] for setup in setups}
    async with BotApiStandIn() as telegram, AsyncExitStack() as stack:
        wipe(args.redis)
        servers: dict[Setup, Served] = {}
        for setup in setups:
            port = free_port()
            config = kefu_config(directory, args.redis, telegram.base_url, metrics=setup.metrics)
            cmd = [sys.executable, "-m", "bot", "--config", str(config), "serve", "--port", str(port),
                   "--workers", str(setup.workers)]
            servers[setup] = await stack.enter_async_context(server(cmd, port, setup.workers))
        if args.profile:
            chosen = next(s for s in setups if s.workers == args.profile)
            await asyncio.to_thread(profile, servers[chosen], texts, args.profile_seconds, directory / "profile")
            return
        print(f"load average before {os.getloadavg()[0]:.1f}")
        for r in range(args.rounds):
            order = setups[r % len(setups):] + setups[:r % len(setups)]
            for setup in order if r % 2 == 0 else order[::-1]:
                served = servers[setup]
                # Sessions of their own per set-up and round: the servers share one store, and with one
                # tag per round the third server to run asked each customer's question a third time —
                # which hands the customer off (a ticket per turn), so it paid twice the CPU per turn.
                tag = f"cost-{r}-{setups.index(setup)}"
                result = await asyncio.to_thread(plain_http_turns, served.base, texts, 20, tag, served.cpu)
                results[setup].append(result)
                if args.verbose:
                    print(row(f"round {r + 1}: {setup.name}", result), flush=True)
        print(f"load average after  {os.getloadavg()[0]:.1f}; {args.rounds} rounds × {args.turns} turns per set-up")
    for setup in setups:
        print(summary(setup.name, results[setup]))
    wipe(args.redis)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--metrics", nargs="+", choices=["on", "off"], default=["on"])
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--copies", type=int, default=1, help="servers of each set-up (2: an A/A control)")
    parser.add_argument("--turns", type=int, default=300, help="timed turns per round and set-up")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/13")
    parser.add_argument("--profile", type=int, default=0, metavar="WORKERS",
                        help="instead: profile the server with this many workers (py-spy)")
    parser.add_argument("--profile-seconds", type=int, default=20)
    parser.add_argument("--cprofile", choices=["on", "off"],
                        help="instead: cProfile one in-process worker with metrics on or off")
    parser.add_argument("--multiprocess", action="store_true",
                        help="with --cprofile: metrics in prometheus_client's multiprocess files, as with --workers N")
    parser.add_argument("--record-cost", type=int, default=0, metavar="CALLS",
                        help="instead: the CPU cost of recording one turn's metrics, each mode")
    parser.add_argument("-v", "--verbose", action="store_true", help="a line per round")
    parser.add_argument("--keep", type=Path, help="with --profile: keep the raw stacks in this directory")
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} CPUs, python {sys.version.split()[0]}; Redis {args.redis}")
    if args.record_cost:
        record_cost(args.record_cost)
        return
    if args.multiprocess:
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="kefu-metrics-")
    main_of = cprofile if args.cprofile else run
    if args.cprofile:  # the worker's log lines (one per turn, and uvicorn's access log) go to a file
        report = os.dup(1)
        log = os.open(Path(tempfile.gettempdir()) / f"kefu-turncost-{os.getpid()}.log", os.O_WRONLY | os.O_CREAT)
        sys.stdout.flush()
        os.dup2(log, 1)
        os.dup2(log, 2)
        try:
            if args.keep:
                args.keep.mkdir(parents=True, exist_ok=True)
            text = asyncio.run(cprofile(args, args.keep or Path(tempfile.mkdtemp(prefix="kefu-turncost-"))))
        finally:
            sys.stdout.flush()
            os.dup2(report, 1)
            os.dup2(report, 2)
        print(text)
        return
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
        asyncio.run(main_of(args, args.keep))
    else:
        with tempfile.TemporaryDirectory() as tmp:
            asyncio.run(main_of(args, Path(tmp)))


if __name__ == "__main__":
    main()
