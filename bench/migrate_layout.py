"""How long ``kefu migrate`` takes to bring a store to data version 2 (hash-tagged keys, issue 19).

    python -m bench.migrate_layout                    # 10 000 conversations
    python -m bench.migrate_layout --conversations 50000

Starts a private ``redis-server`` (nothing else is touched), writes ``--conversations``
conversations in the version-1 layout (document, 4-line transcript, seq counter, two dedupe
markers each; every tenth with a queued ticket), then times :func:`bot.migrations.migrate`
(wall and this process's CPU), and the step run again as after a crash (nothing left to move).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import tempfile
import time

import redis
import redis.asyncio as aioredis

from bot import keys
from bot.migrations import migrate
from tests.browser import free_port


def write_version_1(client: redis.Redis, conversations: int) -> int:
    """Version-1 keys (literal names), pipelined; returns how many keys were written."""
    written = 0
    pipe = client.pipeline(transaction=False)
    for n in range(conversations):
        cid = f"web:bench-{n}"
        doc = {"id": cid, "channel": "web", "user_id": f"bench-{n}", "chat_id": f"bench-{n}", "state": "bot",
               "language": "zh", "profile": {}, "pending_suggestions": [], "failures": 0, "handoff": None,
               "updated_at": 1764000000.0, "pending_action": "", "slots": {}}
        lines = [{"seq": i + 1, "role": role, "text": "怎么退货" if role == "customer" else "签收后 7 天内可以退货。",
                  "at": 1764000000.0, "meta": {"message_id": f"{n}-{i}"} if role == "customer" else {}}
                 for i, role in enumerate(("customer", "bot", "customer", "bot"))]
        pipe.set(f"kefu:conv:{cid}", json.dumps(doc, ensure_ascii=False), ex=30 * 86400)
        pipe.rpush(f"kefu:transcript:{cid}", *(json.dumps(line, ensure_ascii=False) for line in lines))
        pipe.set(f"kefu:transcript-seq:{cid}", 4)
        pipe.set(f"kefu:seen:msg:web:{n}-0", "done:1764000000.0", ex=86400)
        pipe.set(f"kefu:seen:msg:web:{n}-2", "done:1764000000.0", ex=86400)
        written += 5
        if n % 10 == 0:
            pipe.hset(f"kefu:agents:ticket:t{n}", mapping={"id": f"t{n}", "conversation_id": cid, "status": "queued"})
            pipe.set(f"kefu:agents:open:{cid}", f"t{n}")
            pipe.zadd("kefu:agents:queue", {f"t{n}": n})
            written += 2
        if n % 1000 == 999:
            pipe.execute()
    pipe.execute()
    return written + 1  # the queue


async def timed(url: str) -> tuple[float, float]:
    client = aioredis.Redis.from_url(url, decode_responses=True)
    try:
        wall, cpu = time.perf_counter(), time.process_time()
        await migrate(client, report=lambda _line: None)
        return time.perf_counter() - wall, time.process_time() - cpu
    finally:
        await client.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conversations", type=int, default=10_000)
    args = parser.parse_args()
    binary = shutil.which("redis-server")
    assert binary, "redis-server is needed"
    port = free_port()
    with tempfile.TemporaryDirectory() as directory:
        server = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir",
                                   directory], stdout=subprocess.DEVNULL)
        try:
            client = redis.Redis(port=port, decode_responses=True)
            for _ in range(100):
                try:
                    client.ping()
                    break
                except redis.exceptions.ConnectionError:
                    time.sleep(0.05)
            written = write_version_1(client, args.conversations)
            url = f"redis://127.0.0.1:{port}/0"
            wall, cpu = asyncio.run(timed(url))
            client.set(keys.data_version(), 1)  # as if that run had been cut off: the step runs again
            again_wall, _ = asyncio.run(timed(url))
            moved = client.exists(*(keys.conversation(f"web:bench-{n}") for n in range(min(100, args.conversations))))
            assert moved == min(100, args.conversations), "the bench's conversations were not migrated"
            print(f"{args.conversations} conversations, {written} version-1 keys (load {os.getloadavg()[0]:.1f})")
            print(f"migrate: {wall:.2f} s wall, {cpu:.2f} s CPU of this process "
                  f"({written / wall:.0f} keys/s); the step run again (nothing to move): {again_wall:.2f} s")
        finally:
            server.terminate()
            server.wait(timeout=10)


if __name__ == "__main__":
    main()
