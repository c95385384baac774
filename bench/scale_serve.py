"""``python -m bench.scale serve``: two ``kefu serve`` workers on a real Redis over the N-entry
knowledge base — warm start, admin edits until every worker answers from them, the event loop's
worst lateness during each reload (reported by the workers), the cache folder before and after,
and turn latency (new questions, then repeated ones)."""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import redis.asyncio as aioredis

from bench.load import free_port, plain_http_turns, start_server, stop_server, wipe
from bench.scale import ROOT, generate, loop_lateness
from bot import keys
from bot.migrations import check_on_start
from knowledge.service import KnowledgeService
from knowledge.sync import served_versions


def folder_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 1e6


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status", encoding="utf-8") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS")) / 1024


async def edit_until_served(redis_url: str, raw: dict[str, object], workers: int) -> dict[str, float]:
    """Save one entry as the admin console does; seconds until every worker serves it."""
    client = aioredis.Redis.from_url(redis_url, decode_responses=True)
    try:
        service = KnowledgeService(client)
        worst = [0.0]
        prober = asyncio.create_task(loop_lateness(worst))  # the workers' probe in this idle process: the box's own
        begun = time.perf_counter()
        change = await service.save(raw, "bench")
        saved = time.perf_counter() - begun
        while True:
            live = await served_versions(client, time.time())
            if len(live) >= workers and all(w["version"] >= change.version for w in live):
                break
            if time.perf_counter() - begun > 120:
                raise RuntimeError(f"workers did not reach version {change.version}: {live}")
            await asyncio.sleep(0.01)
        visible = time.perf_counter() - begun
        prober.cancel()
        docs = [json.loads(v) for v in (await client.hgetall(keys.kb_served())).values()]
        return {"save_s": round(saved, 3), "visible_s": round(visible, 3),
                "lag_ms": max(float(d.get("lag_ms", 0)) for d in docs), "idle_process_lag_ms": round(worst[0] * 1000, 1),
                "reload_ms": max(float(d.get("reload_ms", 0)) for d in docs)}
    finally:
        await client.aclose()


def serve(size: int, cache_dir: Path, redis_url: str, edits: int, turns: int, workers: int = 2,
          stand_in: bool = False) -> None:
    """``stand_in``: the cache holds :func:`bench.scale.fill`'s stand-in vectors, not e5's; the
    built-in off-topic and complaint classes (real e5 vectors) are left out, or every real
    question — the edits' new phrasings among them — looks nearer to them than to any entry."""
    kb, cases = generate(size)
    wipe(redis_url)
    client = aioredis.Redis.from_url(redis_url, decode_responses=True)
    asyncio.run(_seed(client, kb))
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="kefu-scale-") as folder:
        config = Path(folder) / "config.yaml"
        config.write_text(f"store:\n  url: {redis_url}\nknowledge:\n  cache_dir: {cache_dir}\n"
                          "security:\n  rate_limit_per_minute: 0\n  new_web_sessions_per_minute_per_address: 0\n"
                          "  new_web_sessions_per_minute: 0\n"
                          f"intents:\n  builtin_examples: {'false' if stand_in else 'true'}\n", encoding="utf-8")
        before = folder_mb(cache_dir)
        cmd = [sys.executable, "-m", "bot", "--config", str(config), "serve", "--port", str(port),
               "--workers", str(workers)]
        begun = time.perf_counter()
        proc = start_server(cmd, port, workers, {"PYTHONUNBUFFERED": "1"})
        warm = time.perf_counter() - begun
        try:
            base = f"http://127.0.0.1:{port}"
            pids = _worker_pids(proc.pid)
            print(json.dumps({"size": size, "warm_start_s": round(warm, 1),
                              "worker_rss_mb": [round(rss_mb(p)) for p in pids],
                              "load": round(os.getloadavg()[0], 1)}), flush=True)
            results = []
            for n in range(edits):
                entry = kb.entries[(n * 7919) % len(kb)]
                new_question = f"{entry.questions[0]} — asked a new way, number {n}"
                raw = {**entry.to_json(), "questions": [*entry.questions, new_question]}
                if n % 3 == 2:
                    raw = {"id": f"added-{n}", "questions": [f"a brand new question number {n} about parcels"],
                           "answer": {"en": f"new answer {n}"}}
                    new_question = f"a brand new question number {n} about parcels"
                result = asyncio.run(edit_until_served(redis_url, raw, workers))
                decisions = [httpx.post(f"{base}/api/chat", json={"session": f"edit-{n}-{i}", "text": new_question},
                                        timeout=60).json().get("decision") or {} for i in range(4)]
                result["answered_with_edit"] = sum(d.get("entry_id") == raw["id"] for d in decisions) / len(decisions)
                result["decisions"] = sorted({f"{d.get('action')}:{d.get('entry_id')}" for d in decisions})
                results.append(result)
                print(json.dumps({"edit": n, **result}), flush=True)
            after = folder_mb(cache_dir)
            print(json.dumps({"size": size, "cache_mb_before": round(before, 1), "cache_mb_after_edits": round(after, 1),
                              "edit_visible_max_s": max(r["visible_s"] for r in results),
                              "edit_visible_median_s": statistics.median(r["visible_s"] for r in results),
                              "loop_lag_max_ms": max(r["lag_ms"] for r in results),
                              "idle_process_lag_max_ms": max(r["idle_process_lag_ms"] for r in results)}), flush=True)
            texts = [f"{text} (#{i})" for i, (text, _) in enumerate(cases * (1 + turns // len(cases)))][:turns]
            fresh = plain_http_turns(base, texts, untimed=5, tag=f"new-{size}")
            repeated = plain_http_turns(base, texts, untimed=5, tag=f"again-{size}")
            print(json.dumps({"size": size, "turns": len(fresh.latencies_ms),
                              "new_p50_ms": round(fresh.pct(0.5), 1), "new_p99_ms": round(fresh.pct(0.99), 1),
                              "repeated_p50_ms": round(repeated.pct(0.5), 1),
                              "repeated_p99_ms": round(repeated.pct(0.99), 1),
                              "worker_rss_mb": [round(rss_mb(p)) for p in pids],
                              "load": round(os.getloadavg()[0], 1)}), flush=True)
        finally:
            stop_server(proc)
    wipe(redis_url)


async def _seed(client: aioredis.Redis, kb: object) -> None:
    from knowledge.schema import KnowledgeBase

    assert isinstance(kb, KnowledgeBase)
    await check_on_start(client)  # a fresh store is stamped with this code's data version, as kefu serve does
    await KnowledgeService(client).seed(kb, note="bench.scale")
    await client.aclose()


def _worker_pids(parent: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(parent)], capture_output=True, text=True, check=False).stdout.split()
    children = [int(p) for p in out]
    nested = [int(p) for c in children
              for p in subprocess.run(["pgrep", "-P", str(c)], capture_output=True, text=True,
                                      check=False).stdout.split()]
    return [p for p in children + nested if _is_worker(p)] or children


def _is_worker(pid: int) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return b"multiprocessing" in cmdline or b"spawn" in cmdline


__all__ = ["ROOT", "serve"]
