"""The admin console: the page at ``/admin``, its API, and this worker's knowledge sync.

``install`` runs before the channels are built so every channel's turns are recorded (the
unanswered questions and the dashboard's counters); ``AdminConsole`` is mounted next to the
agent console, whose login, sessions and CSRF checks it reuses.
"""

from __future__ import annotations

from importlib import resources

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Route

from bot.admin.api import AdminApi
from bot.admin.feedback import Feedback
from bot.admin.live import KnowledgeSync
from bot.admin.recorder import ObservedEngine, TurnRecorder
from bot.agents.api import AgentApi
from bot.runtime import Runtime
from bot.static_assets import static_asset

ASSETS = {"admin.js": "text/javascript; charset=utf-8", "admin.css": "text/css; charset=utf-8"}


def install(runtime: Runtime) -> TurnRecorder:
    """Record every turn of this runtime's engine (call before channels take the engine)."""
    recorder = TurnRecorder(runtime.store.records)
    if not isinstance(runtime.engine, ObservedEngine):
        runtime.engine = ObservedEngine.around(runtime.engine, recorder)
    return recorder


class AdminConsole:
    def __init__(self, runtime: Runtime, agents: AgentApi | None, recorder: TurnRecorder) -> None:
        """Without the agent console (``agents`` None) there is no login, so only the knowledge
        sync runs and no admin route is mounted."""
        self.runtime = runtime
        self.api = AdminApi(runtime, agents, recorder) if agents is not None else None
        self.sync = KnowledgeSync(runtime)
        self.feedback = Feedback(runtime.store, recorder, runtime.config.channels.web)

    def routes(self) -> list[BaseRoute]:
        feedback = Route("/api/feedback", self.feedback.vote, methods=["POST"])
        if self.api is None:
            return [feedback]
        return [
            feedback,
            Route("/admin", self.page, methods=["GET"]),
            Route("/admin/{asset}", self.asset, methods=["GET"]),
            *self.api.routes(),
        ]

    async def start(self) -> None:
        await self.sync.start()

    async def stop(self) -> None:
        await self.sync.stop()

    async def page(self, request: Request) -> Response:
        html = resources.files("bot").joinpath("static/admin.html").read_text(encoding="utf-8")
        return HTMLResponse(html, headers={"X-Frame-Options": "DENY", "Cache-Control": "no-store"})

    async def asset(self, request: Request) -> Response:
        return static_asset(request.path_params["asset"], ASSETS)
