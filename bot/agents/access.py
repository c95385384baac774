"""Who is calling a console API: one small object shared by the agent and the admin consoles.

Browsers authenticate with the session cookie set by ``POST /api/agent/login`` and echo the
session's CSRF token in ``X-CSRF-Token`` on every state-changing request; scripts send
``Authorization: Bearer <token>`` and need no CSRF token, since a browser never attaches that
header on its own.  Every recognised caller's presence is refreshed (``seen``), so an admin
editing knowledge counts as online just like an agent answering chats.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable

from starlette.requests import Request

from bot.agents.auth import Agent, AgentDirectory
from bot.errors import Forbidden, NotAuthenticated

COOKIE = "kefu_agent"
CSRF_HEADER = "x-csrf-token"


class ConsoleAccess:
    def __init__(self, directory: AgentDirectory, seen: Callable[[str], Awaitable[None]]) -> None:
        self.directory = directory
        self.seen = seen

    async def agent(self, request: Request) -> Agent:
        """The caller (their presence refreshed); refused when not logged in, and for a
        state-changing browser request without the session's CSRF token."""
        agent = await self.caller(request)
        await self.seen(agent.name)
        return agent

    async def admin(self, request: Request, refusal: str = "admins only") -> Agent:
        """The caller if their role is admin; ``refusal`` is what an agent is told."""
        agent = await self.agent(request)
        if not agent.admin:
            raise Forbidden(refusal)
        return agent

    async def caller(self, request: Request) -> Agent:
        """The caller, without touching their presence (logout)."""
        header = request.headers.get("authorization", "")
        if header.lower().startswith("bearer "):
            agent = await self.directory.by_token(header[7:].strip())
            if agent is None:
                raise NotAuthenticated("invalid API token")
            return agent
        token = request.cookies.get(COOKIE)
        session = await self.directory.session(token) if token else None
        if session is None:
            raise NotAuthenticated("not logged in")
        if request.method not in ("GET", "HEAD") and \
                not hmac.compare_digest(request.headers.get(CSRF_HEADER, ""), session.csrf):
            raise Forbidden("missing or wrong CSRF token")
        return session.agent
