"""The composition root: every long-lived object of a running Kefu, built in order from the config.

Read :func:`compose` top to bottom to see the whole app: the store, the live knowledge, the
desk, the engine with its observers, the channels, console authentication, the consoles, the
routes, the middleware.  Everything is built before Starlette is; the lifespan only does the
asynchronous work (connect, load the knowledge base and its index, start the channels' and
consoles' background tasks) on objects that already exist.  ``kefu serve`` (one worker or many),
``kefu chat``, ``kefu eval`` and the tests all build through here.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass

import redis.asyncio as aioredis
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp

from bot import metrics
from bot.admin.console import AdminConsole
from bot.admin.recorder import TurnRecorder
from bot.agents.access import ConsoleAccess
from bot.agents.console import AgentConsole
from bot.agents.desk import HumanDesk
from bot.channels.base import Channel
from bot.channels.web import WebChannel
from bot.config import Config, load_config
from bot.desk import AgentDesk
from bot.engine import Engine, TurnObserver
from bot.errors import StoreUnavailable
from bot.logs import configure_logging
from bot.ops import MetricsEndpoint, readyz
from bot.runtime import KnowledgeSlot, LiveKnowledge, Runtime, build_actions
from bot.server import BodyLimit, ChatCors, SecurityHeaders, exception_handlers
from bot.storage.client import REDIS_ERRORS, connect
from bot.storage.conversations import Store
from bot.workers import limit_blas_threads, settle_heap_after_loads, stop_requested
from knowledge.schema import KnowledgeBase

log = logging.getLogger(__name__)
UPLOAD_PATHS = ("/api/chat/attachments",)  # checks a size limit of its own


class ChannelRegistry(Mapping[str, Channel]):
    """The running channels by name.  The desk needs it to deliver agents' messages, and the
    channels need the engine, which needs the desk: the desk gets this registry at construction
    and :func:`compose` registers each channel right after building it, before anything runs."""

    def __init__(self) -> None:
        self._channels: dict[str, Channel] = {}

    def register(self, channel: Channel) -> None:
        if channel.name in self._channels:
            raise ValueError(f"channel {channel.name!r} registered twice")
        self._channels[channel.name] = channel

    def __getitem__(self, name: str) -> Channel:
        return self._channels[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._channels)

    def __len__(self) -> int:
        return len(self._channels)


def build_runtime(config: Config, store: Store, *, knowledge: LiveKnowledge | None = None,
                  desk: AgentDesk | None = None, channels: Mapping[str, Channel] | None = None,
                  observers: Sequence[TurnObserver] = ()) -> Runtime:
    """The turn pipeline over ``store``: live knowledge (loaded by :meth:`Runtime.load` unless
    given), the human desk (delivering through ``channels``) and the engine with ``observers``."""
    slot = KnowledgeSlot(knowledge)
    if desk is None:
        desk = HumanDesk(store, config, channels=channels, knowledge=slot.kb)
    engine = Engine(config, store, slot.layer, slot.kb, desk, actions=build_actions(config), observers=observers)
    return Runtime(config, store, desk, engine, slot)


async def start_runtime(config: Config, *, redis: aioredis.Redis | None = None, kb: KnowledgeBase | None = None,
                        desk: AgentDesk | None = None, progress: bool = False) -> Runtime:
    """The pipeline without HTTP (``kefu chat``, ``kefu eval``, tests), connected and loaded.

    ``kb`` replaces the knowledge base for this process only (``kefu eval --kb``)."""
    store = Store(redis if redis is not None else connect(config.store.url), config.store)
    runtime = build_runtime(config, store, desk=desk)
    await runtime.load(kb=kb, progress=progress)
    return runtime


def build_channels(config: Config, engine: Engine, store: Store) -> list[Channel]:
    """The enabled channels, in a fixed order (their routes are mounted in this order)."""
    channels: list[Channel] = []
    settings = config.channels
    if settings.web.enabled:
        channels.append(WebChannel(engine, store, settings.web, config.security))
    if settings.telegram.enabled:
        from bot.channels.telegram import TelegramChannel  # PTB is imported only when used

        channels.append(TelegramChannel(settings.telegram, engine, store))
    if settings.wechat.enabled:
        from bot.channels.wechat import WeChatChannel

        channels.append(WeChatChannel(settings.wechat, engine, store))
    if settings.wecom.enabled:
        from bot.channels.wecom import WeComChannel

        channels.append(WeComChannel(settings.wecom, engine, store))
    return channels


@dataclass(frozen=True)
class Kefu:
    """The composed app: its parts (for the CLI and tests) and the ASGI callable to serve."""

    config: Config
    runtime: Runtime
    channels: ChannelRegistry
    agents: AgentConsole
    admin: AdminConsole
    app: Starlette
    asgi: ASGIApp  # ``app`` behind the body-size limit

    async def start(self, progress: bool = False, wait_for_store: bool = False) -> None:
        """Connect, load the knowledge base and its index (once), then start the background
        work: the channels (polling, send queues), the agent console's event stream and SLA
        timer, the admin console's knowledge sync.

        ``wait_for_store``: while the store is unreachable, wait for it (until the process is
        told to stop) instead of failing — a ``kefu serve --workers N`` worker restarted during
        a Redis outage, whose failed start would make uvicorn stop every worker."""
        if wait_for_store:
            await load_when_reachable(self.runtime)
        else:
            await self.runtime.load(progress=progress)
        self.app.state.runtime = self.runtime  # /readyz: ready from here on
        for channel in self.channels.values():
            await channel.start()
        self.app.state.channels = dict(self.channels)
        await self.agents.start()
        await self.admin.start()

    async def stop(self) -> None:
        await self.admin.stop()
        await self.agents.stop()
        for channel in self.channels.values():
            await channel.stop()
        await self.runtime.close()


async def load_when_reachable(runtime: Runtime, first_wait: float = 0.2, longest_wait: float = 2.0) -> None:
    """``runtime.load()``, tried again with a growing pause while the store is unreachable,
    until it succeeds or the process gets SIGTERM/SIGINT (then the last error is raised)."""
    wait = first_wait
    with stop_requested() as stopping:
        while True:
            try:
                await runtime.load()
                return
            except (StoreUnavailable, *REDIS_ERRORS) as exc:
                if stopping.is_set():
                    raise
                log.warning("the store is unreachable; waiting for it before this worker answers "
                            "(next try in %.1f s): %s", wait, exc)
            await asyncio.sleep(wait)
            if stopping.is_set():
                raise StoreUnavailable("told to stop while waiting for the store")
            wait = min(wait * 2, longest_wait)


def compose(config: Config, *, redis: aioredis.Redis | None = None, knowledge: LiveKnowledge | None = None,
            frame_ancestors: dict[str, str] | None = None, wait_for_store: bool = False) -> Kefu:
    """Build the whole app from ``config``.  ``redis`` replaces the client of ``store.url`` and
    ``knowledge`` an already loaded knowledge base (tests); ``frame_ancestors``: path → who may
    frame it (see :class:`bot.server.SecurityHeaders`); ``wait_for_store``: see :meth:`Kefu.start`."""
    # 1. the store, and the turn recorder that observes every turn for the admin dashboard
    store = Store(redis if redis is not None else connect(config.store.url), config.store)
    recorder = TurnRecorder(store.records)
    # 2. the pipeline: live knowledge, the human desk (delivering through the channel registry)
    #    and the engine with its observers
    channels = ChannelRegistry()
    runtime = build_runtime(config, store, knowledge=knowledge, channels=channels, observers=(recorder,))
    assert isinstance(runtime.desk, HumanDesk)
    # 3. the channels, over the engine
    for channel in build_channels(config, runtime.engine, store):
        channels.register(channel)
    # 4. who calls a console API (shared by both consoles), then the consoles
    access = ConsoleAccess(runtime.desk.directory, runtime.desk.mark_online)
    agents = AgentConsole(runtime.desk, access)
    admin = AdminConsole(runtime, access, recorder)
    # 5. the routes, every one of them, then the app with its middleware and error translation
    routes: list[BaseRoute] = [
        Route("/healthz", healthz, methods=["GET"]), Route("/readyz", readyz, methods=["GET"]),
        *MetricsEndpoint(config.metrics).routes(),
        *(route for channel in channels.values() for route in channel.routes()),
        *agents.routes(),  # /agent and /api/agent
        *admin.routes(),  # /api/feedback, /admin and /api/admin
    ]
    kefu: Kefu

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        limit_blas_threads()  # one BLAS thread per worker, next to its one-thread encoder
        metrics.configure(config.metrics.enabled)
        await kefu.start(wait_for_store=wait_for_store)
        try:
            yield
        finally:
            await kefu.stop()
            metrics.worker_exited(os.getpid())

    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        middleware=[Middleware(SecurityHeaders, frame_ancestors=frame_ancestors),
                    Middleware(ChatCors, origins=config.channels.web.allowed_origins)],
        exception_handlers=exception_handlers(),
    )
    kefu = Kefu(config, runtime, channels, agents, admin, app,
                BodyLimit(app, config.server.max_body_bytes, uploads=UPLOAD_PATHS))
    return kefu


async def healthz(request: Request) -> Response:
    runtime: Runtime = request.app.state.runtime
    await runtime.store.ping()
    knowledge = runtime.knowledge
    return JSONResponse({"status": "ok", "store": "redis" if runtime.store.durable else "memory",
                         "knowledge_entries": len(knowledge.kb), "knowledge_version": knowledge.version,
                         "channels": sorted(request.app.state.channels), "worker_pid": os.getpid()})


def create_app(config: Config, *, redis: aioredis.Redis | None = None, knowledge: LiveKnowledge | None = None,
               frame_ancestors: dict[str, str] | None = None, wait_for_store: bool = False) -> ASGIApp:
    """The ASGI app to serve (see :func:`compose`)."""
    return compose(config, redis=redis, knowledge=knowledge, frame_ancestors=frame_ancestors,
                   wait_for_store=wait_for_store).asgi


CONFIG_ENV = "KEFU_CONFIG_FILE"


def app_from_environment() -> ASGIApp:
    """The app of one ``kefu serve --workers N`` worker process: uvicorn imports this factory
    in each process, and the parent passes the config file's path in the environment."""
    config = load_config(os.environ.get(CONFIG_ENV) or None)
    configure_logging(mask=config.security.mask_logs, fmt=config.logging.format)
    settle_heap_after_loads()
    return create_app(config, wait_for_store=True)  # the parent has checked the store once
