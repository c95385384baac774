"""Shared fixtures: the store under test (in-memory and real Redis), configs and runtimes.

Redis tests use database 15 of the server at KEFU_TEST_REDIS_URL (default
redis://127.0.0.1:6379/15) and delete only Kefu's keys.  When KEFU_REQUIRE_REDIS=1 (as in CI) an
unreachable Redis fails the run instead of skipping.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import redis
import redis.asyncio as aioredis

from bot.config import Config, IntentsConfig, KnowledgeConfig, StoreConfig
from bot.storage.client import connect
from bot.storage.conversations import Store
from bot.workers import limit_blas_threads

# One BLAS thread, as every serving worker runs (bot/workers.py): with a pool per core, the
# edit path's small matrix products spin against the other tests on a shared box (~10x slower).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
limit_blas_threads(1)

if TYPE_CHECKING:
    from bot.runtime import Runtime

REDIS_URL = os.environ.get("KEFU_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def require_redis() -> None:
    """Skip (locally) or fail (CI) when the real Redis server is not reachable."""
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except redis.exceptions.ConnectionError as exc:
        if os.environ.get("KEFU_REQUIRE_REDIS") == "1":
            pytest.fail(f"Redis tests must run but {REDIS_URL} is unreachable: {exc}")
        pytest.skip(f"no Redis at {REDIS_URL}")


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One index/embedding cache for the whole test session, like a real deployment's."""
    return tmp_path_factory.mktemp("kefu-cache")


@pytest.fixture
def config(cache_dir: Path) -> Config:
    return Config(knowledge=KnowledgeConfig(cache_dir=str(cache_dir)), intents=IntentsConfig())


@pytest.fixture(params=["memory", "redis"])
async def redis_client(request: pytest.FixtureRequest) -> AsyncIterator[aioredis.Redis]:
    """The same tests run against the embedded store and a real Redis server."""
    if request.param == "redis":
        require_redis()
        client = connect(REDIS_URL)
    else:
        client = connect("memory://")
    store = Store(client, StoreConfig())
    await store.clear()
    yield client
    await store.clear()
    await client.aclose()


@pytest.fixture
async def store(redis_client: aioredis.Redis) -> Store:
    return Store(redis_client, StoreConfig(transcript_max=50))


@pytest.fixture
async def runtime(config: Config, redis_client: aioredis.Redis) -> AsyncIterator[Runtime]:
    from bot.runtime import Runtime

    rt = await Runtime.start(config, redis=redis_client)
    yield rt


@pytest.fixture
def memory_config(config: Config) -> Config:
    return dataclasses.replace(config, store=StoreConfig(url="memory://"))


@pytest.fixture
def shared_data() -> Iterator[Path]:
    if not SHARED.exists():
        pytest.skip(f"shared data not found at {SHARED}")
    yield SHARED
