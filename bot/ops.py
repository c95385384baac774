"""Operations endpoints: ``/readyz`` (readiness, as Kubernetes means it) and ``/metrics``.

``/healthz`` stays liveness (the process answers and Redis pings); ``/readyz`` says whether
this worker should get traffic — the knowledge index is built, Redis answers, every enabled
channel is connected — and, when not, why, as JSON.  ``/metrics`` is Prometheus text, guarded
by ``metrics.token`` (Bearer) or, without one, open to loopback clients only.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from collections.abc import Iterator
from typing import Any

from prometheus_client.core import Metric
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from bot import metrics
from bot.agents.desk import HumanDesk
from bot.channels.base import ReportsReadiness
from bot.config import Config, MetricsConfig
from bot.errors import ConfigError, StoreUnavailable
from bot.runtime import Runtime
from bot.storage.client import REDIS_ERRORS
from bot.storage.conversations import Store

log = logging.getLogger(__name__)
LOOPBACK = {"127.0.0.1", "::1", "localhost"}


async def readiness(request: Request) -> tuple[list[str], dict[str, Any]]:
    """Why this worker is not ready (empty: ready) and the result of every check."""
    runtime: Runtime | None = getattr(request.app.state, "runtime", None)
    if runtime is None:
        return ["starting: the knowledge index is not built yet"], {}
    why: list[str] = []
    checks: dict[str, Any] = {}
    knowledge = runtime.knowledge
    checks["knowledge"] = {"ok": True, "entries": len(knowledge.kb), "version": knowledge.version}
    try:
        await runtime.store.ping()
        checks["store"] = {"ok": True}
    except StoreUnavailable as exc:
        metrics.redis_error("readyz")
        checks["store"] = {"ok": False, "error": str(exc)}
        why.append(f"store: {exc}")
    channels: dict[str, Any] = {}
    for name, channel in sorted(getattr(request.app.state, "channels", {}).items()):
        reason = channel.not_ready() if isinstance(channel, ReportsReadiness) else ""
        channels[name] = {"ok": not reason, **({"why": reason} if reason else {})}
        if reason:
            why.append(reason)
    checks["channels"] = channels
    return why, checks


async def readyz(request: Request) -> Response:
    why, checks = await readiness(request)
    body: dict[str, Any] = {"ready": not why, "why": why}
    if checks:
        body["checks"] = checks
    return JSONResponse(body, status_code=503 if why else 200)


class MetricsEndpoint:
    def __init__(self, config: MetricsConfig) -> None:
        self.config = config

    def routes(self) -> list[BaseRoute]:
        """``/metrics`` on the main port, unless it is off or has a listener of its own."""
        if not self.config.enabled or self.config.listen:
            return []
        return [Route("/metrics", self.scrape, methods=["GET"])]

    def _refused(self, request: Request) -> Response | None:
        if self.config.token:
            sent = request.headers.get("authorization", "")
            if hmac.compare_digest(sent.encode(), f"Bearer {self.config.token}".encode()):
                return None
            return JSONResponse({"error": "send Authorization: Bearer <metrics.token>"}, status_code=401)
        client = request.client.host if request.client else ""
        if client in LOOPBACK:
            return None
        return JSONResponse({"error": "set metrics.token to scrape /metrics from another host"}, status_code=403)

    async def scrape(self, request: Request) -> Response:
        refused = self._refused(request)
        if refused is not None:
            return refused
        runtime: Runtime = request.app.state.runtime
        snapshot = None
        store_up = 1
        if isinstance(runtime.desk, HumanDesk):
            try:
                snapshot = await desk_snapshot(runtime.desk)
            except (StoreUnavailable, *REDIS_ERRORS) as exc:
                metrics.redis_error("metrics")
                log.warning("/metrics without the desk state: %s", exc)
                store_up = 0
        why, _ = await readiness(request)
        from prometheus_client.core import GaugeMetricFamily

        up = GaugeMetricFamily("kefu_store_up", "1 when this worker read Redis for this scrape", value=store_up)
        ready = GaugeMetricFamily("kefu_ready", "1 when /readyz on the scraped worker says ready", value=int(not why))
        return Response(metrics.render([*metrics.desk_families(snapshot), up, ready]),
                        media_type=metrics.CONTENT_TYPE)


async def desk_snapshot(desk: HumanDesk) -> metrics.DeskSnapshot:
    queued = await desk.tickets.queued()
    now = desk.clock()
    oldest = max((now - ticket.created_at for ticket in queued), default=0.0)
    return metrics.DeskSnapshot(len(queued), max(0.0, oldest), await desk.online_agents())


def listen_address(config: MetricsConfig) -> tuple[str, int]:
    return config.address()


class _ListenerScrape:
    """What a scrape on the metrics listener sees: the workers' samples and the desk from Redis."""

    def __init__(self, config: Config) -> None:
        self.config = config

    def collect(self) -> Iterator[Metric]:
        from prometheus_client.core import GaugeMetricFamily

        yield from metrics.recorded()
        if self.config.store.url.startswith("memory://"):  # the worker's private store: not readable here
            return
        try:
            snapshot = asyncio.run(self._desk())  # the listener's own thread: no loop runs here
            up = 1
        except (StoreUnavailable, *REDIS_ERRORS) as exc:
            log.warning("metrics listener without the desk state: %s", exc)
            snapshot, up = None, 0
        yield from metrics.desk_families(snapshot)
        yield GaugeMetricFamily("kefu_store_up", "1 when Redis answered for this scrape", value=up)

    async def _desk(self) -> metrics.DeskSnapshot:
        store = Store.from_config(self.config.store)
        try:
            return await desk_snapshot(HumanDesk(store, self.config))
        finally:
            await store.close()


def start_metrics_listener(config: Config) -> None:
    """Serve ``/metrics`` on ``metrics.listen`` from this (serving or supervising) process, in a
    daemon thread (prometheus_client's own HTTP server); no token there: bind it to an address
    only Prometheus reaches.  Readiness stays per worker: probe ``/readyz`` on the main port."""
    if not config.metrics.enabled or not config.metrics.listen:
        return
    from prometheus_client import CollectorRegistry, start_http_server

    host, port = listen_address(config.metrics)
    registry = CollectorRegistry()
    registry.register(_ListenerScrape(config))
    try:
        start_http_server(port, addr=host, registry=registry)
    except OSError as exc:
        raise ConfigError(f"metrics.listen: cannot listen on {config.metrics.listen}: {exc}") from None
    log.info("metrics on http://%s:%d/metrics", host, port)
