"""Run a business action: in-process from a module of rasa-sdk Action classes, or on a remote server.

Both runners are asynchronous and awaited on the event loop by the engine's act step
(:mod:`handlers.actions.act`): rasa-sdk's executor is async, and the remote runner uses an injected
:class:`httpx.AsyncClient` (tests give it a ``MockTransport`` or a loopback server).  Every
failure — unknown action, exception, timeout, unreachable server — comes back as an
:class:`ActionRun` with status ``failed``, which the handlers turn into a polite reply and a
handoff; nothing is raised to the engine.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import logging
import os
import pkgutil
import sys
from types import ModuleType
from typing import Any, Protocol

import httpx

from bot.config import ActionsConfig
from bot.errors import ConfigError
from bot.types import ActionRun, ActionStatus
from handlers.actions.call import run_from_result

FAILED = ActionStatus.FAILED

log = logging.getLogger(__name__)


class ActionRunner(Protocol):
    async def run(self, call: dict[str, Any]) -> ActionRun:
        """Run ``call["next_action"]`` with the rasa-sdk action-call body ``call``."""
        ...

    async def close(self) -> None:
        """Release what the runner holds (its HTTP client)."""
        ...


def import_actions(module_name: str) -> list[type[Any]]:
    """The rasa-sdk ``Action`` classes defined in ``module_name`` (and its submodules, for a package).

    Only classes defined there are taken — not every ``Action`` subclass Python happens to know —
    so importing Kefu's own Rasa actions never registers them twice.  The current directory is
    importable, as with ``rasa run actions``.
    """
    try:
        from rasa_sdk import Action
    except ImportError as exc:
        raise ConfigError("actions.module needs rasa-sdk: pip install 'kefu[rasa]'") from exc
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
        modules: list[ModuleType] = [module]
        for info in pkgutil.walk_packages(getattr(module, "__path__", []), prefix=f"{module_name}."):
            modules.append(importlib.import_module(info.name))
    except ImportError as exc:
        raise ConfigError(f"actions.module: cannot import {module_name!r}: {exc}") from exc
    found: dict[str, type[Any]] = {}
    for mod in modules:
        for _, cls in inspect.getmembers(mod, inspect.isclass):
            if (issubclass(cls, Action) and cls is not Action and cls.__module__ == mod.__name__
                    and not inspect.isabstract(cls)):
                found[cls.__qualname__ + cls.__module__] = cls
    if not found:
        raise ConfigError(f"actions.module: {module_name!r} defines no rasa_sdk.Action classes")
    return list(found.values())


class InProcessRunner:
    """rasa-sdk's own ``ActionExecutor`` over the configured module, run inside Kefu."""

    def __init__(self, module_name: str, timeout_seconds: float) -> None:
        from rasa_sdk.executor import ActionExecutor

        self.executor = ActionExecutor()
        for cls in import_actions(module_name):
            self.executor.register_action(cls)
        self.timeout = timeout_seconds

    @property
    def names(self) -> frozenset[str]:
        return frozenset(self.executor.actions)

    async def run(self, call: dict[str, Any]) -> ActionRun:
        name = str(call.get("next_action"))
        if name not in self.executor.actions:
            return ActionRun(name, FAILED, detail=f"no action {name!r} in actions.module")
        try:
            result = await asyncio.wait_for(self.executor.run(call), self.timeout)
        except TimeoutError:
            log.warning("business action %s timed out after %gs", name, self.timeout)
            return ActionRun(name, FAILED, detail=f"timed out after {self.timeout:g}s")
        except Exception as exc:  # an action's bug must end in a handoff, not a stack trace to the customer
            log.exception("business action %s failed", name)
            return ActionRun(name, FAILED, detail=f"{type(exc).__name__}: {exc}")
        return run_from_result(name, result.model_dump() if result is not None else None)

    async def close(self) -> None:
        return None


class RemoteRunner:
    """A running rasa-sdk action server (``rasa run actions`` or ``kefu actions``): POST /webhook."""

    def __init__(self, server_url: str, timeout_seconds: float, client: httpx.AsyncClient) -> None:
        self.url = server_url.rstrip("/") + "/webhook"
        self.timeout = timeout_seconds
        self.client = client

    async def close(self) -> None:
        await self.client.aclose()

    async def run(self, call: dict[str, Any]) -> ActionRun:
        name = str(call.get("next_action"))
        try:
            response = await self.client.post(self.url, json=call, timeout=self.timeout)
        except httpx.TimeoutException:
            log.warning("action server %s: %s timed out after %gs", self.url, name, self.timeout)
            return ActionRun(name, FAILED, detail=f"action server timed out after {self.timeout:g}s")
        except httpx.HTTPError as exc:
            log.warning("action server %s unreachable for %s: %s", self.url, name, exc)
            return ActionRun(name, FAILED, detail=f"action server unreachable: {type(exc).__name__}")
        if response.status_code != 200:
            log.warning("action server %s: %s answered HTTP %d: %s", self.url, name, response.status_code,
                        response.text[:300])
            return ActionRun(name, FAILED, detail=f"action server answered HTTP {response.status_code}")
        try:
            data = response.json()
        except ValueError:
            return ActionRun(name, FAILED, detail="action server answered with something that is not JSON")
        return run_from_result(name, data if isinstance(data, dict) else None)


def build_runner(config: ActionsConfig, client: httpx.AsyncClient | None = None) -> ActionRunner | None:
    """The configured runner: a remote server if ``server_url`` is set, else ``module`` in-process."""
    if config.server_url:
        return RemoteRunner(config.server_url, config.timeout_seconds,
                            client or httpx.AsyncClient(timeout=config.timeout_seconds))
    if config.module:
        return InProcessRunner(config.module, config.timeout_seconds)
    return None
