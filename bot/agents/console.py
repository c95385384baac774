"""The agent console: the page at ``/agent``, its live event stream, and the desk's timers.

One :class:`AgentConsole` per worker.  It mounts the page, the REST API and the SSE stream,
listens to the shared event channel (so an agent connected here sees what other workers did)
and runs the SLA sweep (escalations, follow-up reminders) every ``agents.sla_check_seconds``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from importlib import resources

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from bot.agents.access import ConsoleAccess
from bot.agents.api import AgentApi
from bot.agents.desk import HumanDesk
from bot.static_assets import static_asset
from bot.storage.client import REDIS_ERRORS

log = logging.getLogger(__name__)
ASSETS = {"agent.js": "text/javascript; charset=utf-8", "agent.css": "text/css; charset=utf-8"}
HEARTBEAT_SECONDS = 15.0
STREAM_MAX_SECONDS = 55.0  # the browser reconnects by itself; a stream never holds up a restart for long


class AgentConsole:
    def __init__(self, desk: HumanDesk, access: ConsoleAccess | None = None) -> None:
        """``access`` identifies callers (shared with the admin console); by default the desk's
        agent directory, refreshing presence through the desk."""
        self.desk = desk
        self.config = desk.config
        self.directory = desk.directory
        self.access = access or ConsoleAccess(desk.directory, desk.mark_online)
        self.api = AgentApi(desk, self.access, desk.config)
        self._sla: asyncio.Task[None] | None = None

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/agent", self.page, methods=["GET"]),
            Route("/agent/{asset}", self.asset, methods=["GET"]),
            Route("/api/agent/events", self.stream, methods=["GET"]),
            *self.api.routes(),
        ]

    async def start(self) -> None:
        await self.desk.events.start()
        self._sla = asyncio.create_task(self._sla_loop(), name="kefu-agent-sla")

    async def stop(self) -> None:
        if self._sla is not None:
            self._sla.cancel()
            await asyncio.wait({self._sla}, timeout=5)
        await self.desk.events.stop()
        with contextlib.suppress(TimeoutError):  # queue notices still running: they are best effort
            await asyncio.wait_for(self.desk.idle(), timeout=10)

    async def _sla_loop(self) -> None:
        while True:
            await asyncio.sleep(max(0.2, self.config.sla_check_seconds))
            try:
                await self.desk.sla_sweep()
            except asyncio.CancelledError:
                raise
            except REDIS_ERRORS as exc:
                log.warning("SLA sweep skipped: store unreachable (%s)", exc)
            except Exception:
                log.exception("SLA sweep failed")

    async def page(self, request: Request) -> Response:
        html = resources.files("bot").joinpath("static/agent.html").read_text(encoding="utf-8")
        return HTMLResponse(html, headers={"X-Frame-Options": "DENY", "Cache-Control": "no-store"})

    async def asset(self, request: Request) -> Response:
        """The page's script and style sheet: static files, so a strict CSP can forbid inline code."""
        return static_asset(request.path_params["asset"], ASSETS)

    async def stream(self, request: Request) -> Response:
        """Server-sent events for one console; starts with ``hello`` so the page re-reads its inbox."""
        agent = await self.api.agent(request)
        await self.desk.mark_online(agent.name)
        queue = self.desk.events.subscribe()

        async def events() -> AsyncIterator[str]:
            loop = asyncio.get_running_loop()
            ends = loop.time() + STREAM_MAX_SECONDS
            try:
                yield "retry: 1000\n\n"
                yield f"event: hello\ndata: {json.dumps({'agent': agent.name})}\n\n"
                while loop.time() < ends:
                    try:
                        event = await asyncio.wait_for(queue.get(), timeout=HEARTBEAT_SECONDS)
                    except TimeoutError:
                        await self.desk.mark_online(agent.name)
                        yield ": ping\n\n"
                        continue
                    if event.get("type") == "reminder" and event.get("agent") != agent.name:
                        continue
                    yield f"event: {event.get('type', 'message')}\ndata: {json.dumps(event, ensure_ascii=False)}\n\n"
            finally:
                self.desk.events.unsubscribe(queue)

        return StreamingResponse(events(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})
