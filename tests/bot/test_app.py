"""The composition root: the whole app is built before Starlette is, and start-up only fills it."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence

import pytest
import redis.asyncio as aioredis
from starlette.routing import Route
from starlette.testclient import TestClient

from bot import keys
from bot.admin.recorder import TurnRecorder, day_of
from bot.app import ChannelRegistry, build_runtime, compose
from bot.config import Config, StoreConfig
from bot.engine import Engine
from bot.storage.conversations import Store
from bot.storage.records import TurnRecord
from bot.types import InboundMessage, TurnResult
from tests.loop import portal


@pytest.fixture
def lexical(config: Config) -> Config:
    return dataclasses.replace(config, store=StoreConfig(url="memory://"),
                               intents=dataclasses.replace(config.intents, embeddings=False))


def paths(routes: Sequence[object]) -> list[str]:
    return [route.path for route in routes if isinstance(route, Route)]


def test_every_route_is_declared_before_the_app_starts(lexical: Config) -> None:
    kefu = compose(lexical)
    declared = paths(kefu.app.routes)
    for path in ("/healthz", "/readyz", "/", "/api/chat", "/agent", "/api/agent/login", "/api/feedback",
                 "/admin", "/api/admin/entries"):
        assert path in declared, path
    with TestClient(kefu.asgi) as client:
        assert client.get("/healthz").json()["channels"] == ["web"]
        assert paths(kefu.app.routes) == declared  # the lifespan added nothing


def test_the_parts_are_wired_at_construction(lexical: Config) -> None:
    kefu = compose(lexical)
    desk = kefu.agents.desk
    assert desk is kefu.runtime.desk and desk is kefu.runtime.engine.desk
    assert desk.channels is kefu.channels and list(kefu.channels) == ["web"]
    assert kefu.agents.access is kefu.admin.api.access  # one caller identification for both consoles
    [recorder] = kefu.runtime.engine.observers
    assert isinstance(recorder, TurnRecorder) and recorder is kefu.admin.api.recorder


def test_turns_are_recorded_through_the_engines_observer(lexical: Config) -> None:
    kefu = compose(lexical)
    with TestClient(kefu.asgi) as client:
        session = client.post("/api/chat/visitor", json={}).json()["token"]
        assert client.post("/api/chat", json={"token": session, "text": "退款多久到账"}).status_code == 200
        redis = kefu.runtime.store.redis
        counters = portal(client).call(redis.hgetall, keys.admin_metrics(day_of(time.time())))
    assert counters["turns"] == "1" and counters["conversations"] == "1"


def test_a_channel_is_registered_once() -> None:
    registry = ChannelRegistry()

    class Named:
        name = "web"

    registry.register(Named())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="twice"):
        registry.register(Named())  # type: ignore[arg-type]
    assert len(registry) == 1 and "web" in registry


class Broken:
    def record(self, msg: InboundMessage, result: TurnResult) -> TurnRecord | None:
        raise RuntimeError("observer bug")


class Counting:
    AT = 1_700_000_000.0

    def __init__(self) -> None:
        self.seen = 0

    def record(self, msg: InboundMessage, result: TurnResult) -> TurnRecord | None:
        self.seen += 1
        return TurnRecord(self.AT, {"observed": 1})


async def test_a_failing_observer_never_fails_the_turn(lexical: Config, redis_client: aioredis.Redis) -> None:
    counting = Counting()
    runtime = build_runtime(lexical, Store(redis_client, lexical.store), observers=(Broken(), counting))
    await runtime.load()
    assert isinstance(runtime.engine, Engine)
    result = await runtime.engine.handle(InboundMessage("web", "u1", "c1", "退款多久到账", "m1"))
    assert result.replies and counting.seen == 1
    observed = await redis_client.hget(keys.admin_metrics(day_of(Counting.AT)), "observed")
    assert observed == "1"  # written with the turn's last round trip
    await redis_client.delete(keys.admin_metrics(day_of(Counting.AT)))
