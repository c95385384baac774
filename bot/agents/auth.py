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
import json
import logging
import secrets
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

import redis.asyncio as aioredis

from bot import keys
from bot.config import AgentsConfig
from bot.errors import BadRequest, ConfigError

log = logging.getLogger(__name__)
T = TypeVar("T")

ROLES = ("agent", "admin")
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


# KEYS: pair, address, name counters.  ARGV: window seconds, pair, address, name limits.
# Checks all three and counts the attempt in one step, so parallel guesses cannot overshoot.
_RESERVE_LOGIN = """
for i = 1, 3 do
  if tonumber(redis.call('GET', KEYS[i]) or '0') >= tonumber(ARGV[i + 1]) then return i end
end
for i = 1, 3 do
  if redis.call('INCR', KEYS[i]) == 1 then redis.call('EXPIRE', KEYS[i], ARGV[1]) end
end
return 0
"""
# KEYS: pair, address, name counters: the attempt just counted was a success.
_GOOD_LOGIN = """
redis.call('DEL', KEYS[1])
for i = 2, 3 do
  if tonumber(redis.call('GET', KEYS[i]) or '0') > 0 then redis.call('DECR', KEYS[i]) end
end
return 0
"""
_LOCKED = {1: "too many failed logins from this address for this name",
           2: "too many failed logins from this address",
           3: "too many failed logins for this name"}


def _token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Agent:
    name: str
    role: str
    display_name: str = ""  # what customers see ("小李"); the login name when empty

    @property
    def shown(self) -> str:
        return self.display_name or self.name

    @property
    def admin(self) -> bool:
        return self.role == "admin"


@dataclass(frozen=True)
class Session:
    token: str
    agent: Agent
    csrf: str  # empty for API-token callers, who are not a browser and need no CSRF check


class AgentDirectory:
    """Agents, sessions and tokens; configured agents take precedence over stored ones.

    A session remembers its agent's *epoch*; changing an agent's password or role (``kefu agent
    add`` again) or removing them bumps or drops it, which ends every session they had."""

    def __init__(self, redis: aioredis.Redis, config: AgentsConfig) -> None:
        self.redis = redis
        self.config = config
        self._configured: dict[str, tuple[str, str]] = {}
        self._display: dict[str, str] = {}
        self._pending = 0
        for i, user in enumerate(config.users):
            if not user.name or user.role not in ROLES or not user.password_hash.startswith("scrypt$"):
                raise ConfigError(f"agents.users[{i}]: needs a name, role agent|admin and a password_hash "
                                  "made by `kefu agent add`")
            self._configured[user.name] = (user.password_hash, user.role)
            self._display[user.name] = user.display_name

    async def _stored(self, name: str) -> dict[str, str] | None:
        raw = await self.redis.hget(keys.agent_users(), name)
        return None if raw is None else {k: str(v) for k, v in json.loads(raw).items()}

    async def _record(self, name: str) -> tuple[str, str, str] | None:
        """(password hash, role, epoch) or None."""
        if name in self._configured:
            digest, role = self._configured[name]
            return digest, role, "config-" + _name_part(digest + role)  # a new hash in the config ends sessions
        data = await self._stored(name)
        if data is None:
            return None
        return data["password_hash"], data["role"], data.get("epoch", "0")

    async def display_name(self, name: str) -> str:
        """The name customers see for agent ``name`` ("" if none was set)."""
        if name in self._configured:
            return self._display.get(name, "")
        data = await self._stored(name)
        return (data.get("display_name") or "") if data else ""

    async def add(self, name: str, password: str, role: str, display_name: str = "") -> None:
        """Add an agent, or reset their password, role and display name: their existing sessions end."""
        if role not in ROLES:
            raise BadRequest(f"role must be one of {', '.join(ROLES)}")
        if not name.strip() or len(name) > 64:
            raise BadRequest("an agent name is 1-64 characters")
        if len(display_name) > 32:
            raise BadRequest("a display name is at most 32 characters")
        before = await self._stored(name)
        epoch = str(int(before.get("epoch", "0")) + 1) if before else "0"
        digest = await self._hash(password)
        record = {"password_hash": digest, "role": role, "epoch": epoch, "display_name": display_name.strip()}
        await self.redis.hset(keys.agent_users(), name, json.dumps(record))

    async def remove(self, name: str) -> int:
        """Remove a stored agent: sessions end at once, API tokens are revoked; returns tokens revoked."""
        if name in self._configured:
            raise BadRequest(f"{name!r} is in agents.users of the config file: remove them there", status=409)
        if not await self.redis.hdel(keys.agent_users(), name):
            raise BadRequest(f"no agent named {name!r}", status=404)
        return await self.revoke_tokens(name)

    async def revoke_tokens(self, name: str) -> int:
        """Revoke every API token of ``name``; returns how many there were."""
        doomed = [digest async for digest, owner in self.redis.hscan_iter(keys.agent_tokens()) if owner == name]
        if doomed:
            await self.redis.hdel(keys.agent_tokens(), *doomed)
        return len(doomed)

    async def unlock(self, name: str) -> None:
        """Lift the login limits on ``name`` (every address), e.g. after a guessing attack."""
        part = _name_part(name)
        doomed = [k async for k in self.redis.scan_iter(match=keys.agent_login_attempts("pair", f"{part}:*"))]
        await self.redis.delete(keys.agent_login_attempts("name", part), *doomed)

    async def get(self, name: str) -> Agent | None:
        record = await self._record(name)
        return None if record is None else Agent(name, record[1])

    async def all(self) -> list[Agent]:
        stored = await self.redis.hgetall(keys.agent_users())
        agents = {str(name): Agent(str(name), json.loads(raw)["role"]) for name, raw in stored.items()}
        agents.update({name: Agent(name, role) for name, (_, role) in self._configured.items()})
        return sorted(agents.values(), key=lambda a: a.name)

    async def _off_loop(self, work: Callable[[], T]) -> T:
        """Run one scrypt in the hashing threads: the event loop keeps serving, and at most
        :data:`MAX_PENDING_HASHES` logins wait (memory and CPU stay bounded)."""
        if self._pending >= MAX_PENDING_HASHES:
            raise BadRequest("too many logins at once; try again in a few seconds", status=503)
        self._pending += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(_HASHING, work)
        finally:
            self._pending -= 1

    async def _hash(self, password: str) -> str:
        return await self._off_loop(lambda: hash_password(password))

    async def login(self, name: str, password: str, client: str = "-") -> Session | None:
        """A new session, or None for a wrong name or password; 429 once ``client`` (the caller's
        address) or the name has used up its attempts.  Every attempt costs one hash, known
        name or not, so neither the time nor the answer tells real names from made-up ones."""
        part = _name_part(name)
        counters = [keys.agent_login_attempts("pair", f"{part}:{client}"),
                    keys.agent_login_attempts("address", client), keys.agent_login_attempts("name", part)]
        refused = int(await self.redis.eval(_RESERVE_LOGIN, 3, *counters, LOGIN_WINDOW_SECONDS,
                                            PAIR_LIMIT, ADDRESS_LIMIT, NAME_LIMIT))
        if refused:
            raise BadRequest(f"{_LOCKED[refused]}; try again in 15 minutes", status=429)
        record = await self._record(name)
        stored = record[0] if record is not None else None
        # one job in the hashing queue either way, so an unknown name waits no longer than a real one
        ok = await self._off_loop(lambda: verify_password(password, stored or _dummy_hash()))
        if record is None or not ok:
            return None
        await self.redis.eval(_GOOD_LOGIN, 3, *counters)  # a good login is not a failure
        digest, role, epoch = record
        if needs_rehash(digest):
            await self._rehash(name, password)
        session = Session(secrets.token_urlsafe(32), Agent(name, role), secrets.token_urlsafe(24))
        ttl = max(60, int(self.config.session_hours * 3600))
        await self.redis.set(keys.agent_session(session.token), json.dumps(
            {"name": name, "role": role, "csrf": session.csrf, "epoch": epoch}), ex=ttl)
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
            await self.redis.hset(keys.agent_users(), name, json.dumps(data))

    async def session(self, token: str) -> Session | None:
        raw = await self.redis.get(keys.agent_session(token))
        if raw is None:
            return None
        data = json.loads(raw)
        record = await self._record(data["name"])
        # removed, demoted/promoted or given a new password since logging in: the session is over
        if record is None or record[1] != data["role"] or record[2] != data.get("epoch", "0"):
            await self.redis.delete(keys.agent_session(token))
            return None
        return Session(token, Agent(data["name"], data["role"]), data["csrf"])

    async def logout(self, token: str) -> None:
        await self.redis.delete(keys.agent_session(token))

    async def issue_token(self, name: str) -> str:
        if await self._record(name) is None:
            raise BadRequest(f"no agent named {name!r}", status=404)
        token = "kefu_" + secrets.token_urlsafe(32)
        await self.redis.hset(keys.agent_tokens(), _token_digest(token), name)
        return token

    async def by_token(self, token: str) -> Agent | None:
        name = await self.redis.hget(keys.agent_tokens(), _token_digest(token))
        return None if name is None else await self.get(str(name))
