"""The whole app on the real Redis (database from KEFU_TEST_REDIS_URL), driven as an attacker
would: raw bytes, forged headers, floods.  Only Kefu's keys are wiped, before and after."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import redis
from starlette.testclient import TestClient

from bot.agents.auth import hash_password
from bot.app import create_app
from bot.config import AgentUserConfig, Config, IntentsConfig, StoreConfig
from tests.conftest import REDIS_URL, require_redis

PASSWORD = "correct-horse-密码"


@pytest.fixture(scope="session")
def password_hash() -> str:
    return hash_password(PASSWORD)


def wipe() -> None:
    client = redis.Redis.from_url(REDIS_URL)
    for key in client.scan_iter(match="kefu:*", count=500):
        client.delete(key)


@dataclass
class Served:
    client: TestClient
    config: Config

    def login(self, name: str = "boss", password: str = PASSWORD, **headers: str) -> dict[str, str]:
        r = self.client.post("/api/agent/login", json={"name": name, "password": password}, headers=headers)
        assert r.status_code == 200, r.text
        return {"X-CSRF-Token": r.json()["csrf"]}


@pytest.fixture
def app_config(config: Config, password_hash: str) -> Config:
    require_redis()
    users = (AgentUserConfig("boss", password_hash, "admin"), AgentUserConfig("li", password_hash, "agent"))
    return dataclasses.replace(config, store=StoreConfig(url=REDIS_URL), intents=IntentsConfig(embeddings=False),
                               agents=dataclasses.replace(config.agents, users=users))


@pytest.fixture
def served(app_config: Config) -> Iterator[Served]:
    wipe()
    with TestClient(create_app(app_config), base_url="http://127.0.0.1:8080") as client:
        yield Served(client, app_config)
    wipe()
