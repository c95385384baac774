"""``kefu actions``: a rasa-sdk action server (``/webhook``, ``/actions``, ``/health``) for Rasa assistants.

Actions are executed by rasa-sdk's own :class:`~rasa_sdk.executor.ActionExecutor` — the same
tracker parsing, dispatcher and event validation as ``rasa run actions`` — behind a small
Starlette app, so they share one event loop with Kefu's store, knowledge base and desk.  The
responses match rasa-sdk's endpoint: 200 ``{events, responses}``, 404 unknown action, 400
rejected, 449 domain missing, 500 on an action's error.

Besides Kefu's actions (:mod:`bot.rasa.actions`) the server also registers the business actions
of ``actions.module``, so one server can answer for both.
"""

from __future__ import annotations

import json
import logging
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from rasa_sdk.executor import ActionExecutor
from rasa_sdk.interfaces import ActionExecutionRejection, ActionMissingDomainException, ActionNotFoundException
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from bot.config import Config
from bot.rasa.actions import kefu_actions
from bot.runtime import Runtime
from handlers.actions.runner import import_actions

log = logging.getLogger(__name__)


def build_executor(runtime: Runtime) -> ActionExecutor:
    executor = ActionExecutor()
    for action in kefu_actions(runtime):
        executor.register_action(action)
    if runtime.config.actions.module:
        for cls in import_actions(runtime.config.actions.module):
            executor.register_action(cls)
    return executor


def create_actions_app(config: Config, runtime_factory: Callable[[Config], Awaitable[Runtime]] = Runtime.start
                       ) -> Starlette:
    """The action server; the runtime is started on startup (so it lives on the server's loop)."""
    holder: dict[str, Any] = {}

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        runtime = await runtime_factory(config)
        holder["runtime"], holder["executor"] = runtime, build_executor(runtime)
        log.info("Kefu action server ready: %s", ", ".join(sorted(holder["executor"].actions)))
        try:
            yield
        finally:
            await runtime.close()

    async def health(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    async def actions(request: Request) -> JSONResponse:
        executor: ActionExecutor = holder["executor"]
        return JSONResponse([item.model_dump() for item in executor.list_actions()])

    async def webhook(request: Request) -> JSONResponse:
        executor: ActionExecutor = holder["executor"]
        body = await request.body()
        try:
            if request.headers.get("content-encoding") == "deflate":
                body = zlib.decompress(body)
            call = json.loads(body) if body else None
        except (ValueError, zlib.error):
            call = None
        if not isinstance(call, dict):
            return JSONResponse({"error": "Invalid body request"}, status_code=400)
        try:
            result = await executor.run(call)
        except ActionExecutionRejection as exc:
            return JSONResponse({"error": exc.message, "action_name": exc.action_name}, status_code=400)
        except ActionNotFoundException as exc:
            log.error("%s", exc)
            return JSONResponse({"error": exc.message, "action_name": exc.action_name}, status_code=404)
        except ActionMissingDomainException as exc:
            return JSONResponse({"error": exc.message, "action_name": exc.action_name}, status_code=449)
        except Exception as exc:  # rasa-sdk answers 500 with the error; Rasa then runs its fallback
            log.exception("action %s failed", call.get("next_action"))
            return JSONResponse({"error": str(exc), "action_name": call.get("next_action")}, status_code=500)
        return JSONResponse(result.model_dump() if result is not None else None)

    return Starlette(routes=[Route("/health", health), Route("/actions", actions),
                             Route("/webhook", webhook, methods=["POST"])], lifespan=lifespan)


def serve(config: Config, host: str, port: int) -> None:
    import uvicorn

    log.info("Kefu action server on http://%s:%d/webhook (config: %s)", host, port, config.source)
    uvicorn.run(create_actions_app(config), host=host, port=port, log_level="info")
