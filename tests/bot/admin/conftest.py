"""An admin console over a real runtime (lexical retrieval, so fast) on the parametrised store,
with the web chat and the agent console mounted the way ``kefu serve`` mounts them."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
import redis.asyncio as aioredis

from bot.admin.console import AdminConsole
from bot.agents.auth import hash_password
from bot.app import compose
from bot.config import AgentsConfig, AgentUserConfig, Config
from bot.runtime import Runtime

PASSWORD = "admin-密码-1"


@pytest.fixture(scope="session")
def password_hash() -> str:
    return hash_password(PASSWORD)


@pytest.fixture
def admin_config(config: Config, password_hash: str) -> Config:
    users = (AgentUserConfig("li", password_hash, "agent"), AgentUserConfig("boss", password_hash, "admin"))
    return dataclasses.replace(config, intents=dataclasses.replace(config.intents, embeddings=False),
                               agents=AgentsConfig(users=users, queue_update_seconds=0))


@dataclass
class Admin:
    client: httpx.AsyncClient
    runtime: Runtime
    console: AdminConsole

    async def login(self, name: str = "boss") -> dict[str, str]:
        r = await self.client.post("/api/agent/login", json={"name": name, "password": PASSWORD})
        assert r.status_code == 200, r.text
        return {"X-CSRF-Token": r.json()["csrf"]}

    async def chat(self, text: str, session: str = "customer-1") -> str:
        r = await self.client.post("/api/chat", json={"session": f"session-{session}", "text": text})
        assert r.status_code == 200, r.text
        return "\n".join(reply["text"] for reply in r.json()["replies"])


@pytest.fixture
async def admin(admin_config: Config, redis_client: aioredis.Redis) -> AsyncIterator[Admin]:
    async for harness in make_admin(admin_config, redis_client):
        yield harness


async def make_admin(admin_config: Config, redis_client: aioredis.Redis) -> AsyncIterator[Admin]:
    """The web chat, agent console and admin console over one runtime, composed as ``kefu serve``
    composes them (the consoles' background tasks are not started)."""
    kefu = compose(admin_config, redis=redis_client)
    await kefu.runtime.load()
    transport = httpx.ASGITransport(app=kefu.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://kefu.test") as client:
        yield Admin(client, kefu.runtime, kefu.admin)
