"""Password guessing and login abuse, as an attacker with one or many addresses would try it."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot import keys
from bot.agents import auth
from bot.agents.auth import NAME_LIMIT, PAIR_LIMIT, AgentDirectory, needs_rehash, verify_password
from bot.config import AgentsConfig
from bot.errors import InvalidInput, RateLimited
from bot.server import status_of
from bot.storage.client import connect
from bot.storage.conversations import Store
from tests.bot.security.conftest import PASSWORD, Served, wipe
from tests.conftest import REDIS_URL, require_redis
from tests.loop import portal

ROOT = Path(__file__).resolve().parents[3]
ATTACKER, DESK = "203.0.113.66", "198.51.100.20"


async def test_parallel_guesses_are_counted_atomically(store: Store) -> None:
    directory = AgentDirectory(store.redis, AgentsConfig())
    await directory.add("li", "li-password", "agent")
    outcomes = await asyncio.gather(*(directory.login("li", f"guess-{i}", ATTACKER) for i in range(15)),
                                    return_exceptions=True)
    refused = [o for o in outcomes if isinstance(o, RateLimited) and status_of(o) == 429]
    assert outcomes.count(None) == PAIR_LIMIT and len(refused) == 15 - PAIR_LIMIT


async def test_a_botnet_locks_the_name_until_an_admin_unlocks_it(store: Store) -> None:
    directory = AgentDirectory(store.redis, AgentsConfig())
    await directory.add("li", "li-password", "agent")
    await store.redis.set(keys.agent_login_attempts("name", auth._name_part("li")), NAME_LIMIT)  # 100 bots later
    with pytest.raises(RateLimited, match="for this name"):
        await directory.login("li", "li-password", DESK)
    await directory.unlock("li")
    assert await directory.login("li", "li-password", DESK) is not None


async def test_unknown_names_cost_one_hash_like_real_ones(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    directory = AgentDirectory(store.redis, AgentsConfig())
    await directory.add("li", "li-password", "agent")
    await directory.login("nobody", "x", ATTACKER)  # the dummy hash is made once per process
    calls: list[int] = []
    real = hashlib.scrypt

    def counted(*args: object, **kwargs: object) -> bytes:
        calls.append(1)
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(hashlib, "scrypt", counted)
    for name in ("li", "nobody", "nobody-else"):
        before = len(calls)
        assert await directory.login(name, "wrong-password", ATTACKER) is None
        assert len(calls) - before == 1, name


async def test_hashing_runs_off_the_event_loop(store: Store) -> None:
    directory = AgentDirectory(store.redis, AgentsConfig())
    await directory.add("li", "li-password", "agent")
    ticks = 0
    done = asyncio.Event()

    async def ticker() -> None:
        nonlocal ticks
        while not done.is_set():
            ticks += 1
            await asyncio.sleep(0)

    task = asyncio.create_task(ticker())
    await asyncio.gather(*(directory.login("li", "wrong", f"192.0.2.{i}") for i in range(4)))
    done.set()
    await task
    assert ticks > 200  # the loop kept turning while four scrypt hashes ran (on it: a handful)


async def test_old_cost_hashes_are_upgraded_on_login_and_sessions_survive(store: Store) -> None:
    directory = AgentDirectory(store.redis, AgentsConfig())
    await directory.add("li", "li-password", "agent")
    old = {"password_hash": hashed_at_old_cost("li-password"), "role": "agent", "epoch": "3"}
    await store.redis.hset(keys.agent_users(), "li", json.dumps(old))
    session = await directory.login("li", "li-password", DESK)
    assert session is not None
    stored = json.loads(str(await store.redis.hget(keys.agent_users(), "li")))
    assert not needs_rehash(stored["password_hash"]) and stored["password_hash"].startswith("scrypt$16384$8$5$")
    assert verify_password("li-password", stored["password_hash"]) and stored["epoch"] == "3"
    assert await directory.session(session.token) == session


def hashed_at_old_cost(password: str) -> str:
    import base64

    salt = b"0123456789abcdef"
    digest = hashlib.scrypt(password.encode(), salt=salt, n=2**14, r=8, p=1, dklen=32)
    return f"scrypt${2**14}$8$1${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def test_demoting_an_admin_or_resetting_a_password_ends_their_sessions(served: Served) -> None:
    client = served.client
    directory = AgentDirectory(client.app.app.state.runtime.store.redis, served.config.agents)  # type: ignore[attr-defined]

    portal(client).call(directory.add, "wu", "wu-password-1", "admin")
    headers = served.login("wu", "wu-password-1")
    assert client.get("/api/admin/status", headers=headers).status_code == 200
    portal(client).call(directory.add, "wu", "wu-password-1", "agent")  # demoted
    assert client.get("/api/admin/status", headers=headers).status_code == 401
    headers = served.login("wu", "wu-password-1")
    portal(client).call(directory.add, "wu", "a-new-password", "agent")  # password reset
    assert client.get("/api/agent/me", headers=headers).status_code == 401
    headers = served.login("wu", "a-new-password")
    portal(client).call(directory.remove, "wu")
    assert client.get("/api/agent/me", headers=headers).status_code == 401


@pytest.mark.parametrize(("content_type", "origin", "status"), [
    ("text/plain", None, 415), ("application/x-www-form-urlencoded", None, 415),
    ("application/json", "https://evil.example", 403), ("application/json", "http://127.0.0.1:8080", 200),
    ("application/json", None, 200)])
def test_login_csrf_from_another_site_is_refused(served: Served, content_type: str, origin: str | None,
                                                 status: int) -> None:
    headers = {"content-type": content_type} | ({"origin": origin} if origin else {})
    r = served.client.post("/api/agent/login", content=json.dumps({"name": "boss", "password": PASSWORD}),
                           headers=headers)
    assert r.status_code == status, r.text
    assert ("set-cookie" in r.headers) == (status == 200)


def kefu(config: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bot", "--config", str(config), "agent", *args], input=stdin,
                          capture_output=True, text=True, timeout=60, cwd=ROOT, env=dict(os.environ))


async def test_remove_and_revoke_tokens_from_the_command_line(tmp_path: Path) -> None:
    require_redis()
    wipe()
    config = tmp_path / "kefu.yaml"
    config.write_text(f"store:\n  url: {REDIS_URL}\n", encoding="utf-8")
    client = connect(REDIS_URL)
    directory = AgentDirectory(client, AgentsConfig())
    assert kefu(config, "add", "zhao", "--password-stdin", stdin="zhao-password\n").returncode == 0
    first, second = (kefu(config, "token", "zhao").stdout.strip() for _ in range(2))
    session = await directory.login("zhao", "zhao-password", DESK)
    assert session is not None and await directory.by_token(first) is not None

    revoked = kefu(config, "revoke-tokens", "zhao")
    assert revoked.returncode == 0 and "2 API token(s)" in revoked.stdout
    assert await directory.by_token(first) is None and await directory.by_token(second) is None
    assert await directory.session(session.token) is not None  # revoking tokens leaves the login alone

    third = kefu(config, "token", "zhao").stdout.strip()
    removed = kefu(config, "remove", "zhao")
    assert removed.returncode == 0 and "1 API token(s)" in removed.stdout
    assert await directory.session(session.token) is None and await directory.by_token(third) is None
    again = kefu(config, "remove", "zhao")
    assert again.returncode == 2 and "no agent named" in again.stderr
    unlock = kefu(config, "unlock", "zhao")
    assert unlock.returncode == 0
    await client.aclose()
    wipe()


async def test_team_lead_changes_end_sessions_but_a_new_skill_group_does_not(store: Store) -> None:
    # agent management in the console (AgentDirectory.update) keeps the epochs of `kefu agent add`
    directory = AgentDirectory(store.redis, AgentsConfig())
    await directory.add("li", "li-password", "agent", groups=("售后",), max_chats=2)
    kept = await directory.login("li", "li-password", DESK)
    assert kept is not None and kept.agent.groups == ("售后",) and kept.agent.max_chats == 2
    await directory.update("li", groups=("售后", "物流"), max_chats=3, display_name="小李")
    again = await directory.session(kept.token)
    assert again is not None and again.agent.groups == ("售后", "物流") and again.agent.shown == "小李"
    for password, change in (("li-password", {"role": "admin"}), ("li-password", {"password": "new-password"}),
                             ("new-password", {"disabled": True})):
        session = await directory.login("li", password, DESK)
        assert session is not None
        await directory.update("li", **change)
        assert await directory.session(session.token) is None
        assert await store.redis.get(keys.agent_session(session.token)) is None
    assert await directory.login("li", "new-password", DESK) is None  # disabled
    await directory.update("li", disabled=False)
    assert await directory.login("li", "new-password", DESK) is not None
    with pytest.raises(InvalidInput, match="at least 8"):
        await directory.update("li", password="short")
