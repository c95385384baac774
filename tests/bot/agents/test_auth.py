"""Passwords, stored agents and tokens; and ``kefu agent add/token`` as an operator runs them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot import keys
from bot.agents.auth import AgentDirectory, hash_password, verify_password
from bot.config import AgentsConfig, AgentUserConfig
from bot.errors import InvalidInput, RateLimited
from bot.server import status_of
from bot.storage.client import connect
from bot.storage.conversations import Store
from tests.conftest import REDIS_URL, require_redis

ROOT = Path(__file__).resolve().parents[3]


def test_password_hash_is_salted_scrypt_and_verifies() -> None:
    first, second = hash_password("correct horse"), hash_password("correct horse")
    assert first.startswith("scrypt$") and first != second and "correct" not in first
    assert verify_password("correct horse", first) and verify_password("correct horse", second)
    assert not verify_password("Correct horse", first)
    assert not verify_password("x", "not-a-hash") and not verify_password("x", "scrypt$bad")


async def test_stored_agents_log_in_and_config_agents_take_precedence(store: Store) -> None:
    config = AgentsConfig(users=(AgentUserConfig("boss", hash_password("boss-password"), "admin"),))
    directory = AgentDirectory(store.redis, config)
    await directory.add("li", "li-password", "agent")
    await directory.add("boss", "other-password", "agent")  # shadowed by the config entry
    assert [(a.name, a.role) for a in await directory.all()] == [("boss", "admin"), ("li", "agent")]
    session = await directory.login("li", "li-password")
    assert session is not None and session.agent.role == "agent" and session.csrf
    assert (await directory.session(session.token)) == session
    assert await directory.login("boss", "other-password") is None
    assert await directory.login("boss", "boss-password") is not None
    with pytest.raises(InvalidInput):
        await directory.add("x", "password", "root")
    await directory.logout(session.token)
    assert await directory.session(session.token) is None


async def test_password_guessing_is_locked_out_but_not_the_agent(store: Store) -> None:
    directory = AgentDirectory(store.redis, AgentsConfig())
    await directory.add("li", "li-password", "agent")
    for _ in range(10):
        assert await directory.login("li", "guess", "203.0.113.9") is None
    with pytest.raises(RateLimited) as locked:  # the guesser's address is done, right password or not
        await directory.login("li", "li-password", "203.0.113.9")
    assert status_of(locked.value) == 429
    assert await directory.login("li", "li-password", "198.51.100.7") is not None  # li, at her desk


def kefu(config: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bot", "--config", str(config), "agent", *args], input=stdin,
                          capture_output=True, text=True, timeout=60, cwd=ROOT, env=dict(os.environ))


def test_agent_add_without_redis_prints_the_config_entry(tmp_path: Path) -> None:
    config = tmp_path / "kefu.yaml"
    config.write_text("store:\n  url: memory://\n", encoding="utf-8")
    result = kefu(config, "add", "li", "--role", "admin", "--password-stdin", stdin="long-enough-pw\n")
    assert result.returncode == 0, result.stderr
    assert "name: li" in result.stdout and "role: admin" in result.stdout and "long-enough" not in result.stdout
    hashed = result.stdout.split('password_hash: "')[1].split('"')[0]
    assert verify_password("long-enough-pw", hashed)
    short = kefu(config, "add", "li", "--password-stdin", stdin="short\n")
    assert short.returncode == 2 and "at least 8" in short.stderr
    token = kefu(config, "token", "li")
    assert token.returncode == 2 and "Redis" in token.stderr


async def test_agent_add_and_token_with_redis(tmp_path: Path) -> None:
    require_redis()
    client = connect(REDIS_URL)
    await client.delete(keys.agent_users(), keys.agent_tokens())
    try:
        config = tmp_path / "kefu.yaml"
        config.write_text(f"store:\n  url: {REDIS_URL}\n", encoding="utf-8")
        added = kefu(config, "add", "wang", "--password-stdin", stdin="wang-password\n")
        assert added.returncode == 0, added.stderr
        token = kefu(config, "token", "wang")
        assert token.returncode == 0 and token.stdout.startswith("kefu_")
        directory = AgentDirectory(client, AgentsConfig())
        agent = await directory.by_token(token.stdout.strip())
        assert agent is not None and agent.name == "wang"
        assert await directory.login("wang", "wang-password") is not None
        assert "wang" in kefu(config, "list").stdout
        missing = kefu(config, "token", "nobody")
        assert missing.returncode == 2 and "no agent named" in missing.stderr
    finally:
        await client.delete(keys.agent_users(), keys.agent_tokens())
        await client.aclose()
