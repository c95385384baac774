"""Who may use the console: hashed passwords, login sessions with CSRF tokens, API tokens.

Agents come from ``agents.users`` in the config and from ``kefu agent add`` (stored in Redis,
so adding one needs no restart).  Passwords are hashed with the standard library's scrypt; API
tokens are stored only as their SHA-256, so a leaked store does not leak working tokens.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import hashlib
import hmac
import logging
import secrets
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

import redis.asyncio as aioredis

from bot.config import ROLES, AgentsConfig
from bot.errors import Conflict, InvalidInput, NotFound, Overloaded, RateLimited
from bot.storage.agents import AgentAccounts

log = logging.getLogger(__name__)
T = TypeVar("T")

LOGIN_WINDOW_SECONDS = 900
# Attempts per 15 minutes: one address guessing one name, one address over all names, and every
# address together for one name (a botnet's brake; `kefu agent unlock NAME` lifts it).
PAIR_LIMIT, ADDRESS_LIMIT, NAME_LIMIT = 10, 30, 100
MAX_PENDING_HASHES = 32  # logins waiting for a hashing thread; beyond that 503, the loop stays free
# scrypt at OWASP's Password Storage Cheat Sheet level (N=2^14, r=8, p=5 is its equivalent of
# N=2^17, r=8, p=1 with 16 MiB instead of 128 MiB per hash).  Older hashes verify and are
# replaced on the next successful login.
_N, _R, _P = 2**14, 8, 5
_MAXMEM = 64 * 2**20
_HASHING = ThreadPoolExecutor(max_workers=2, thread_name_prefix="kefu-scrypt")


def hash_password(password: str) -> str:
    """``scrypt$N$r$p$salt$hash`` (base64), self-describing so the cost can be raised later."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=_N, r=_R, p=_P, dklen=32, maxmem=_MAXMEM)
    b64 = base64.b64encode
    return f"scrypt${_N}${_R}${_P}${b64(salt).decode()}${b64(digest).decode()}"


def verify_password(password: str, encoded: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = encoded.split("$")
        if scheme != "scrypt" or int(n) > 2**20 or int(r) > 32 or int(p) > 16:
            return False
        expected = base64.b64decode(digest)
        actual = hashlib.scrypt(password.encode("utf-8"), salt=base64.b64decode(salt), n=int(n), r=int(r),
                                p=int(p), dklen=len(expected), maxmem=_MAXMEM * 4)
    except (ValueError, TypeError, MemoryError):
        return False
    return hmac.compare_digest(actual, expected)


def needs_rehash(encoded: str) -> bool:
    """True when ``encoded`` was made with a lower cost than today's."""
    parts = encoded.split("$")
    return len(parts) != 6 or parts[1:4] != [str(_N), str(_R), str(_P)]


@functools.cache
def _dummy_hash() -> str:
    """What an unknown name's password is checked against: one hash, like a real name costs."""
    return hash_password(secrets.token_urlsafe(16))


def _name_part(name: str) -> str:
    return hashlib.sha256(name.encode("utf-8", "replace")).hexdigest()[:16]


_LOCKED = {1: "too many failed logins from this address for this name",
           2: "too many failed logins from this address",
           3: "too many failed logins for this name"}


def _token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Agent:
    name: str
    role: str
    groups: tuple[str, ...] = ()
    max_chats: int = 0  # 0: the desk's default (agents.max_chats)
    disabled: bool = False
    configured: bool = False  # from the config file: not editable in the console
    display_name: str = ""  # what customers see ("小李"); the login name when empty

    @property
    def shown(self) -> str:
        return self.display_name or self.name

    @property
    def admin(self) -> bool:
        return self.role == "admin"

    def to_json(self) -> dict[str, object]:
        return {"name": self.name, "role": self.role, "display_name": self.display_name,
                "groups": list(self.groups), "max_chats": self.max_chats,
                "disabled": self.disabled, "configured": self.configured}


@dataclass(frozen=True)
class _Record:
    password_hash: str
    agent: Agent
    epoch: str = "0"  # bumped by a new password or role, or a disable: the sessions before it end


def _agent_from(name: str, data: dict[str, object]) -> Agent:
    groups = data.get("groups") or []
    return Agent(name, str(data.get("role", "agent")), tuple(str(g) for g in groups) if isinstance(groups, list)
                 else (), int(str(data.get("max_chats") or 0)), bool(data.get("disabled")),
                 display_name=str(data.get("display_name") or ""))


def _next_epoch(data: dict[str, object]) -> str:
    return str(int(str(data.get("epoch") or "0")) + 1)


@dataclass(frozen=True)
class Session:
    token: str
    agent: Agent
    csrf: str  # empty for API-token callers, who are not a browser and need no CSRF check


class AgentDirectory:
    """Agents, sessions and tokens; configured agents take precedence over stored ones.

    A session remembers its agent's *epoch*; changing an agent's password or role (``kefu agent
    add`` again, or the team lead's :meth:`update`), disabling them or removing them bumps or
    drops it, which ends every session they had."""

    def __init__(self, redis: aioredis.Redis, config: AgentsConfig) -> None:
        self.redis = redis
        self.accounts = AgentAccounts(redis)
        self.config = config
        self._configured: dict[str, _Record] = {}
        self._pending = 0
        config.check()  # a name, role agent|admin and a password_hash made by `kefu agent add` each
        for user in config.users:
            self._configured[user.name] = _Record(user.password_hash, Agent(
                user.name, user.role, tuple(user.groups), user.max_chats, configured=True,
                display_name=user.display_name),
                # a new hash or role in the config ends sessions
                "config-" + _name_part(user.password_hash + user.role))

    async def _stored(self, name: str) -> dict[str, object] | None:
        return await self.accounts.account(name)

    async def _save(self, name: str, data: dict[str, object]) -> None:
        await self.accounts.save_account(name, data)

    async def _record(self, name: str) -> _Record | None:
        if name in self._configured:
            return self._configured[name]
        data = await self._stored(name)
        if data is None:
            return None
        return _Record(str(data["password_hash"]), _agent_from(name, data), str(data.get("epoch") or "0"))

    async def display_name(self, name: str) -> str:
        """The name customers see for agent ``name`` ("" if none was set)."""
        record = await self._record(name)
        return "" if record is None else record.agent.display_name

    async def add(self, name: str, password: str, role: str, display_name: str = "", groups: tuple[str, ...] = (),
                  max_chats: int = 0) -> Agent:
        """Add an agent, or reset their password, role and display name: their existing sessions end."""
        if role not in ROLES:
            raise InvalidInput(f"role must be one of {', '.join(ROLES)}")
        if not name.strip() or len(name) > 64:
            raise InvalidInput("an agent name is 1-64 characters")
        if len(display_name) > 32:
            raise InvalidInput("a display name is at most 32 characters")
        if len(password) < 8:
            raise InvalidInput("a password is at least 8 characters")
        before = await self._stored(name)
        epoch = _next_epoch(before) if before else "0"
        record: dict[str, object] = {
            "password_hash": await self._hash(password), "role": role, "epoch": epoch,
            "display_name": display_name.strip(), "groups": list(groups), "max_chats": max_chats}
        await self._save(name, record)
        return _agent_from(name, record)

    async def update(self, name: str, *, role: str | None = None, groups: tuple[str, ...] | None = None,
                     max_chats: int | None = None, disabled: bool | None = None,
                     password: str | None = None, display_name: str | None = None) -> Agent:
        """Change a stored agent (the team lead's agent management).  A new password or role, or
        disabling them, bumps the epoch: their sessions end at once; a disabled agent's API tokens
        stop working too, since every request re-reads the record."""
        if name in self._configured:
            raise Conflict(f"{name} is defined in the config file (agents.users); edit it there")
        data = await self._stored(name)
        if data is None:
            raise NotFound(f"no agent named {name!r}")
        ends_sessions = False
        if role is not None:
            if role not in ROLES:
                raise InvalidInput(f"role must be one of {', '.join(ROLES)}")
            ends_sessions |= data.get("role") != role
            data["role"] = role
        if display_name is not None:
            if len(display_name) > 32:
                raise InvalidInput("a display name is at most 32 characters")
            data["display_name"] = display_name.strip()
        if groups is not None:
            data["groups"] = list(groups)
        if max_chats is not None:
            data["max_chats"] = max_chats
        if disabled is not None:
            ends_sessions |= disabled and not data.get("disabled")
            data["disabled"] = disabled
        if password is not None:
            if len(password) < 8:
                raise InvalidInput("a password is at least 8 characters")
            data["password_hash"] = await self._hash(password)
            ends_sessions = True
        if ends_sessions:
            data["epoch"] = _next_epoch(data)
        await self._save(name, data)
        return _agent_from(name, data)

    async def remove(self, name: str) -> int:
        """Remove a stored agent: sessions end at once, API tokens are revoked; returns tokens revoked."""
        if name in self._configured:
            raise Conflict(f"{name!r} is in agents.users of the config file: remove them there")
        if not await self.accounts.remove_account(name):
            raise NotFound(f"no agent named {name!r}")
        return await self.revoke_tokens(name)

    async def revoke_tokens(self, name: str) -> int:
        """Revoke every API token of ``name``; returns how many there were."""
        return await self.accounts.revoke_tokens(name)

    async def unlock(self, name: str) -> None:
        """Lift the login limits on ``name`` (every address), e.g. after a guessing attack."""
        await self.accounts.unlock(_name_part(name))

    async def get(self, name: str) -> Agent | None:
        record = await self._record(name)
        return None if record is None else record.agent

    async def all(self) -> list[Agent]:
        stored = await self.accounts.accounts()
        agents = {name: _agent_from(name, data) for name, data in stored.items()}
        agents.update({name: record.agent for name, record in self._configured.items()})
        return sorted(agents.values(), key=lambda a: a.name)

    async def _off_loop(self, work: Callable[[], T]) -> T:
        """Run one scrypt in the hashing threads: the event loop keeps serving, and at most
        :data:`MAX_PENDING_HASHES` logins wait (memory and CPU stay bounded)."""
        if self._pending >= MAX_PENDING_HASHES:
            raise Overloaded("too many logins at once; try again in a few seconds")
        self._pending += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(_HASHING, work)
        finally:
            self._pending -= 1

    async def _hash(self, password: str) -> str:
        return await self._off_loop(lambda: hash_password(password))

    async def login(self, name: str, password: str, client: str = "-") -> Session | None:
        """A new session, or None for a wrong name or password (or a disabled agent); 429 once
        ``client`` (the caller's address) or the name has used up its attempts.  Every attempt
        costs one hash, known name or not, so neither the time nor the answer tells real names
        from made-up ones."""
        part = _name_part(name)
        refused = await self.accounts.reserve_login(part, client, LOGIN_WINDOW_SECONDS,
                                                    (PAIR_LIMIT, ADDRESS_LIMIT, NAME_LIMIT))
        if refused:
            raise RateLimited(f"{_LOCKED[refused]}; try again in 15 minutes")
        record = await self._record(name)
        stored = record.password_hash if record is not None else None
        # one job in the hashing queue either way, so an unknown name waits no longer than a real one
        ok = await self._off_loop(lambda: verify_password(password, stored or _dummy_hash()))
        if record is None or not ok or record.agent.disabled:
            return None
        await self.accounts.good_login(part, client)  # a good login is not a failure
        if needs_rehash(record.password_hash):
            await self._rehash(name, password)
        session = Session(secrets.token_urlsafe(32), record.agent, secrets.token_urlsafe(24))
        ttl = max(60, int(self.config.session_hours * 3600))
        await self.accounts.save_session(session.token, {
            "name": name, "role": record.agent.role, "csrf": session.csrf, "epoch": record.epoch}, ttl)
        return session

    async def _rehash(self, name: str, password: str) -> None:
        """Store the password at today's cost (stored agents; the config's hashes are the operator's)."""
        if name in self._configured:
            log.warning("agent %s: the password_hash in the config uses an old scrypt cost; "
                        "make a new one with `kefu agent add`", name)
            return
        data = await self._stored(name)
        if data is not None:
            data["password_hash"] = await self._hash(password)
            await self._save(name, data)

    async def session(self, token: str) -> Session | None:
        data = await self.accounts.session(token)
        if data is None:
            return None
        record = await self._record(data["name"])
        # removed, disabled, demoted/promoted or given a new password since logging in: the session is over
        if (record is None or record.agent.disabled or record.agent.role != data["role"]
                or record.epoch != data.get("epoch", "0")):
            await self.accounts.end_session(token)
            return None
        return Session(token, record.agent, data["csrf"])

    async def logout(self, token: str) -> None:
        await self.accounts.end_session(token)

    async def issue_token(self, name: str) -> str:
        if await self._record(name) is None:
            raise NotFound(f"no agent named {name!r}")
        token = "kefu_" + secrets.token_urlsafe(32)
        await self.accounts.save_token(_token_digest(token), name)
        return token

    async def by_token(self, token: str) -> Agent | None:
        name = await self.accounts.token_owner(_token_digest(token))
        agent = None if name is None else await self.get(name)
        return None if agent is None or agent.disabled else agent
