"""Live console updates: published once through Redis, fanned out by every worker to the
consoles it serves, and streamed to the browser as server-sent events."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import AsyncIterator

import httpx
import redis.asyncio as aioredis
from starlette.applications import Starlette

from bot.agents.auth import hash_password
from bot.agents.console import AgentConsole
from bot.agents.desk import HumanDesk
from bot.agents.events import EventBus
from bot.config import AgentUserConfig, Config
from bot.storage.conversations import Store
from tests.bot.agents.conftest import LI, WANG, Clock, RecordingChannel, hand_off
from tests.bot.channels.telegram_standin import Served


async def next_event(queue: asyncio.Queue[dict[str, object]], kind: str) -> dict[str, object]:
    while True:
        event = await asyncio.wait_for(queue.get(), 5)
        if event["type"] == kind:
            return event


async def test_an_event_published_on_one_worker_reaches_consoles_on_another(redis_client: aioredis.Redis) -> None:
    worker_a, worker_b = EventBus(redis_client), EventBus(redis_client)
    console_on_b = worker_b.subscribe()
    await worker_a.start()
    await worker_b.start()
    try:
        await worker_a.publish("ticket", ticket_id="t1", change="claimed")
        event = await next_event(console_on_b, "ticket")
        assert event == {"type": "ticket", "ticket_id": "t1", "change": "claimed"}
    finally:
        await worker_a.stop()
        await worker_b.stop()


async def sse(lines: AsyncIterator[str], kind: str) -> dict[str, object]:
    """The data of the next server-sent event of type ``kind``."""
    current = ""
    async for line in lines:
        if line.startswith("event: "):
            current = line[7:]
        elif line.startswith("data: ") and current == kind:
            return dict(json.loads(line[6:]))
    raise AssertionError("stream ended")


async def test_console_stream_shows_escalation_and_only_my_reminders(
        store: Store, desk_config: Config, clock: Clock) -> None:
    digest = hash_password("pw-12345678")
    users = tuple(AgentUserConfig(n, digest, "agent") for n in ("li", "wang"))
    config = dataclasses.replace(desk_config, agents=dataclasses.replace(desk_config.agents, users=users))
    desk = HumanDesk(store, config, clock=clock, channels={"web": RecordingChannel()})  # type: ignore[dict-item]
    console = AgentConsole(desk)
    await console.desk.events.start()
    app = Starlette(routes=console.routes())
    try:
        async with Served(app) as served, httpx.AsyncClient(base_url=served.url, timeout=10) as http:
            await http.post("/api/agent/login", json={"name": "wang", "password": "pw-12345678"})
            async with http.stream("GET", "/api/agent/events") as stream:
                assert stream.headers["content-type"].startswith("text/event-stream")
                lines = stream.aiter_lines()
                assert (await asyncio.wait_for(sse(lines, "hello"), 5))["agent"] == "wang"
                assert await desk.online_agents() == 1  # a connected console counts for wait estimates

                await hand_off(desk, "c1", ["我要投诉"])
                opened = await asyncio.wait_for(sse(lines, "ticket"), 5)
                assert opened["change"] == "opened"
                ticket_id = (await desk.tickets.queued())[0].id
                await desk.follow_up(ticket_id, LI, 1, "li's promise")
                await desk.follow_up(ticket_id, WANG, 1, "wang's promise")
                clock.advance(6 * 60)
                await desk.sla_sweep()
                escalated = await asyncio.wait_for(sse(lines, "escalated"), 5)
                assert escalated["minutes"] == 6 and escalated["ticket"]["id"] == ticket_id  # type: ignore[index]
                reminder = await asyncio.wait_for(sse(lines, "reminder"), 5)
                assert reminder["text"] == "wang's promise"  # li's reminder is not streamed to wang
    finally:
        await console.stop()

