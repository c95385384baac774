"""The admin console: the page at ``/admin``, its API, and this worker's knowledge sync.

The turns it reports on are recorded by :class:`TurnRecorder`, an observer the composition root
(``bot/app.py``) gives the engine; ``AdminConsole`` is mounted next to the agent console and
shares its :class:`ConsoleAccess` (login, sessions, CSRF checks).
"""

from __future__ import annotations

from importlib import resources

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Route

from bot.admin.api import AdminApi
from bot.admin.feedback import Feedback
from bot.admin.live import KnowledgeSync
from bot.admin.recorder import TurnRecorder
from bot.agents.access import ConsoleAccess
from bot.review import AnswerReview
from bot.runtime import Runtime
from bot.static_assets import static_asset

ASSETS = {"admin.js": "text/javascript; charset=utf-8", "admin.css": "text/css; charset=utf-8"}


class AdminConsole:
    def __init__(self, runtime: Runtime, access: ConsoleAccess, recorder: TurnRecorder) -> None:
        """``access``: the consoles' caller identification (every admin route needs the admin
        role); ``recorder``: the engine's turn observer, read by the dashboard and feedback."""
        self.runtime = runtime
        self.api = AdminApi(runtime, access, recorder)
        self.sync = KnowledgeSync(runtime)
        self.feedback = Feedback(runtime.store, AnswerReview(runtime.store), runtime.config.channels.web)

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/api/feedback", self.feedback.vote, methods=["POST"]),
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
