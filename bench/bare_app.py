"""The reference for ``bench.load``: an ASGI endpoint that only reads and writes the Redis keys a
Kefu turn touches (dedupe marker, lock, conversation, transcript), with no intent layer.

    KEFU_BENCH_REDIS=redis://127.0.0.1:6379/13 uvicorn bench.bare_app:app --workers 2
"""

from __future__ import annotations

import json
import os
import time
import uuid

import redis.asyncio as aioredis
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bot import keys

REDIS = aioredis.Redis.from_url(os.environ.get("KEFU_BENCH_REDIS", "redis://127.0.0.1:6379/13"))


async def chat(request: Request) -> Response:
    body = await request.json()
    conversation = f"web:{body['session']}"
    message_id = body.get("message_id") or uuid.uuid4().hex
    if not await REDIS.set(keys.seen("msg:web", message_id), "1", nx=True, ex=86_400):
        return JSONResponse({"replies": [], "duplicate": True})
    lock = REDIS.lock(keys.lock(conversation), timeout=30, blocking_timeout=30)
    async with lock:
        raw = await REDIS.get(keys.conversation(conversation))
        state = json.loads(raw) if raw else {"id": conversation, "turns": 0}
        state["turns"] += 1
        now = time.time()
        async with REDIS.pipeline(transaction=True) as pipe:
            pipe.set(keys.conversation(conversation), json.dumps(state), ex=30 * 86_400)
            pipe.rpush(keys.transcript(conversation), json.dumps({"role": "customer", "text": body["text"], "at": now}),
                       json.dumps({"role": "bot", "text": "ok", "at": now}))
            pipe.ltrim(keys.transcript(conversation), -200, -1)
            pipe.expire(keys.transcript(conversation), 30 * 86_400)
            await pipe.execute()
    return JSONResponse({"replies": [{"text": "ok"}], "duplicate": False})


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok", "worker_pid": os.getpid()})


app = Starlette(routes=[Route("/api/chat", chat, methods=["POST"]), Route("/healthz", healthz)])
