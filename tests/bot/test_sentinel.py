"""Redis high availability, for real: a primary, a replica and three Sentinels on loopback, two
``kefu serve`` workers on ``store.url: redis+sentinel://...``, a bounded stream of
conversations, and the primary SIGKILLed mid-stream.  Sent / answered / lost / answered twice
are counted from the customers' side and from the transcripts on the promoted replica."""

from __future__ import annotations

import asyncio
import collections
import json
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
import redis

from bot import keys
from tests.browser import free_port, kefu_server

QUESTIONS = ["怎么退货", "退款多久到账", "保修多久", "需要安装吗", "怎么查物流", "可以换货吗", "发错货了",
             "运费怎么算", "收到的东西坏了", "可以上门安装吗"]
CUSTOMERS = 8
MASTER = "kefu-drill"


class Server:
    """One redis-server process (a data node or a Sentinel) on a free loopback port."""

    def __init__(self, directory: Path, *args: str, sentinel: bool = False) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.skip("redis-server not installed")
        self.port = free_port()
        directory.mkdir(parents=True)
        if sentinel:
            conf = directory / "sentinel.conf"  # Sentinel rewrites its file: one each
            conf.write_text(f"port {self.port}\nbind 127.0.0.1\n{''.join(args)}", encoding="utf-8")
            command = [binary, str(conf), "--sentinel"]
        else:
            command = [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--dir",
                       str(directory), *args]
        self.proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.client = redis.Redis(port=self.port, socket_connect_timeout=0.5, decode_responses=True)
        deadline = time.monotonic() + 10
        while True:
            try:
                self.client.ping()
                return
            except redis.exceptions.ConnectionError:
                assert time.monotonic() < deadline, f"redis-server {command} did not start"
                time.sleep(0.05)

    def kill(self) -> None:
        self.proc.kill()  # SIGKILL: no shutdown, no last fsync, no goodbye to the replica
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)


def wait_for(check: object, what: str, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


async def customer(base: str, c: int, log: dict[str, list[dict[str, object]]], answered: list[float]) -> None:
    """Asks its questions one after another; resends the same message id (as the chat page does)
    until it gets an answer: a 503 or a dropped connection is not an answer."""
    async with httpx.AsyncClient(base_url=base, timeout=10) as client:
        for i, text in enumerate(QUESTIONS):
            message_id = f"drill-{c}-{i}"
            deadline = time.monotonic() + 40
            while True:
                assert time.monotonic() < deadline, f"{message_id} never answered"
                try:
                    r = await client.post("/api/chat", json={"session": f"drill-customer-{c}", "text": text,
                                                             "message_id": message_id})
                except httpx.HTTPError:
                    await asyncio.sleep(0.1)
                    continue
                if r.status_code == 200:
                    body = r.json()
                    log[message_id].append(body)
                    if body["replies"]:  # (a duplicate of a turn still running elsewhere has none yet)
                        answered.append(time.monotonic())
                        break
                await asyncio.sleep(0.1)
            await asyncio.sleep(0.05)


async def stream(base: str, primary: Server) -> tuple[dict[str, list[dict[str, object]]], float, float]:
    log: dict[str, list[dict[str, object]]] = collections.defaultdict(list)
    answered: list[float] = []
    tasks = [asyncio.create_task(customer(base, c, log, answered)) for c in range(CUSTOMERS)]
    while len(answered) < CUSTOMERS * len(QUESTIONS) // 3:  # a third of the stream in: kill the primary
        await asyncio.sleep(0.02)
    killed_at = time.monotonic()
    await asyncio.to_thread(primary.kill)
    before = len(answered)
    await asyncio.gather(*tasks)
    first_after = min((at for at in answered[before:] if at > killed_at), default=killed_at)
    return log, killed_at, first_after


def test_primary_killed_mid_stream_loses_nothing_and_answers_nothing_twice(tmp_path: Path, cache_dir: Path) -> None:
    started = time.monotonic()
    durable = ("--appendonly", "yes", "--appendfsync", "always")
    primary = Server(tmp_path / "primary", *durable)
    replica = Server(tmp_path / "replica", *durable, "--replicaof", "127.0.0.1", str(primary.port))
    monitor = (f"sentinel monitor {MASTER} 127.0.0.1 {primary.port} 2\n"
               f"sentinel down-after-milliseconds {MASTER} 1000\nsentinel failover-timeout {MASTER} 10000\n")
    sentinels = [Server(tmp_path / f"sentinel-{n}", monitor, sentinel=True) for n in range(3)]
    servers = [primary, replica, *sentinels]
    try:
        def sentinels_agree() -> bool:
            for s in sentinels:
                fields = cast(dict[str, Any], s.client.sentinel_master(MASTER))
                if int(fields["num-slaves"]) < 1 or int(fields["num-other-sentinels"]) < 2:
                    return False
            return True

        wait_for(sentinels_agree, "the Sentinels did not find the replica and each other", 30)
        hosts = ",".join(f"127.0.0.1:{s.port}" for s in sentinels)
        config = (f"knowledge:\n  cache_dir: {cache_dir}\nintents:\n  embeddings: false\n"
                  f"store:\n  url: redis+sentinel://{hosts}/{MASTER}/0\n  wait_replicas: 1\n"
                  "  conversation_lock_seconds: 5\n"  # every customer of the drill comes from 127.0.0.1:
                  "security:\n  new_web_sessions_per_minute_per_address: 0\n  new_web_sessions_per_minute: 0\n")
        with kefu_server(config, tmp_path, "--workers", "2") as base:
            log, killed_at, first_after = asyncio.run(stream(base, primary))
            promoted = cast(tuple[str, int], sentinels[0].client.sentinel_get_master_addr_by_name(MASTER))
            assert int(promoted[1]) == replica.port, "the replica should have been promoted"
            lines: collections.Counter[str] = collections.Counter()
            for c in range(CUSTOMERS):
                for raw in replica.client.lrange(keys.transcript(f"web:drill-customer-{c}"), 0, -1):
                    line = json.loads(raw)
                    if line["role"] == "customer":
                        lines[str(line["meta"]["message_id"])] += 1

        sent = CUSTOMERS * len(QUESTIONS)
        answered = [mid for mid, bodies in log.items() if any(b["replies"] for b in bodies)]
        lost = [mid for mid in answered if lines[mid] == 0]
        twice = sorted({mid for mid, n in lines.items() if n > 1}
                       | {mid for mid, bodies in log.items() if sum(not b["duplicate"] for b in bodies) > 1})
        report = (f"sent {sent}, answered {len(answered)}, lost {len(lost)}, answered twice {len(twice)}; "
                  f"failover {first_after - killed_at:.1f} s; drill {time.monotonic() - started:.1f} s")
        print(report)
        assert (len(answered), lost, twice) == (sent, [], []), report
        assert time.monotonic() - started < 60, report
    finally:
        for server in servers:
            server.stop()


def test_sentinel_urls_name_every_part_and_bad_ones_are_one_clear_line() -> None:
    from bot.errors import ConfigError
    from bot.storage.client import SentinelUrl, connect

    where = SentinelUrl.parse("redis+sentinel://:s3cret@10.0.0.1:26379,10.0.0.2:26380,10.0.0.3/kefu/2")
    assert where == SentinelUrl((("10.0.0.1", 26379), ("10.0.0.2", 26380), ("10.0.0.3", 26379)), "kefu", 2, "s3cret")
    for bad in ("redis+sentinel://10.0.0.1:26379", "redis+sentinel://10.0.0.1:x/kefu",
                "redis+sentinel://:s3cret@10.0.0.1:26379/kefu/zero"):
        with pytest.raises(ConfigError) as error:
            connect(bad)
        assert "redis+sentinel://[:PASSWORD@]HOST:PORT" in str(error.value) and "s3cret" not in str(error.value)
