"""Who may use the console: hashed passwords, login sessions with CSRF tokens, API tokens.

Agents come from ``agents.users`` in the config and from ``kefu agent add`` (stored in Redis,
so adding one needs no restart).  Passwords are hashed with the standard library's scrypt; API
tokens are stored only as their SHA-256, so a leaked store does not leak working tokens.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass

import redis.asyncio as aioredis

from bot import keys
from bot.config import AgentsConfig
from bot.errors import BadRequest, ConfigError

ROLES = ("agent", "admin")
MAX_LOGIN_FAILURES = 10
LOGIN_LOCKOUT_SECONDS = 900
_N, _R, _P = 2**14, 8, 1


def hash_password(password: str) -> str:
    """``scrypt$N$r$p$salt$hash`` (base64), self-describing so the cost can be raised later."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=_N, r=_R, p=_P, dklen=32)
    b64 = base64.b64encode
    return f"scrypt${_N}${_R}${_P}${b64(salt).decode()}${b64(digest).decode()}"


def verify_password(password: str, encoded: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = encoded.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(digest)
        actual = hashlib.scrypt(password.encode("utf-8"), salt=base64.b64decode(salt), n=int(n), r=int(r),
                                p=int(p), dklen=len(expected))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(actual, expected)


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


def _agent_from(name: str, data: dict[str, object]) -> Agent:
    groups = data.get("groups") or []
    return Agent(name, str(data.get("role", "agent")), tuple(str(g) for g in groups) if isinstance(groups, list)
                 else (), int(str(data.get("max_chats") or 0)), bool(data.get("disabled")),
                 display_name=str(data.get("display_name") or ""))


@dataclass(frozen=True)
class Session:
    token: str
    agent: Agent
    csrf: str  # empty for API-token callers, who are not a browser and need no CSRF check


class AgentDirectory:
    """Agents, sessions and tokens; configured agents take precedence over stored ones."""

    def __init__(self, redis: aioredis.Redis, config: AgentsConfig) -> None:
        self.redis = redis
        self.config = config
        self._configured: dict[str, _Record] = {}
        for i, user in enumerate(config.users):
            if not user.name or user.role not in ROLES or not user.password_hash.startswith("scrypt$"):
                raise ConfigError(f"agents.users[{i}]: needs a name, role agent|admin and a password_hash "
                                  "made by `kefu agent add`")
            if user.max_chats < 0:
                raise ConfigError(f"agents.users[{i}].max_chats: must be 0 (the default) or more")
            self._configured[user.name] = _Record(user.password_hash, Agent(
                user.name, user.role, tuple(user.groups), user.max_chats, configured=True,
                display_name=user.display_name))

    async def _record(self, name: str) -> _Record | None:
        if name in self._configured:
            return self._configured[name]
        raw = await self.redis.hget(keys.agent_users(), name)
        if raw is None:
            return None
        data = json.loads(raw)
        return _Record(str(data["password_hash"]), _agent_from(name, data))

    async def display_name(self, name: str) -> str:
        """The name customers see for agent ``name`` ("" if none was set)."""
        record = await self._record(name)
        return "" if record is None else record.agent.display_name

    async def add(self, name: str, password: str, role: str, display_name: str = "", groups: tuple[str, ...] = (),
                  max_chats: int = 0) -> Agent:
        if role not in ROLES:
            raise BadRequest(f"role must be one of {', '.join(ROLES)}")
        if not name.strip() or len(name) > 64:
            raise BadRequest("an agent name is 1-64 characters")
        if len(display_name) > 32:
            raise BadRequest("a display name is at most 32 characters")
        if len(password) < 8:
            raise BadRequest("a password is at least 8 characters")
        record = {"password_hash": hash_password(password), "role": role, "display_name": display_name.strip(),
                  "groups": list(groups), "max_chats": max_chats}
        await self.redis.hset(keys.agent_users(), name, json.dumps(record, ensure_ascii=False))
        return _agent_from(name, record)

    async def update(self, name: str, *, role: str | None = None, groups: tuple[str, ...] | None = None,
                     max_chats: int | None = None, disabled: bool | None = None,
                     password: str | None = None, display_name: str | None = None) -> Agent:
        """Change a stored agent (the team lead's agent management); a disabled agent's sessions
        and tokens stop working at once, since every request re-reads the record."""
        if name in self._configured:
            raise BadRequest(f"{name} is defined in the config file (agents.users); edit it there", status=409)
        raw = await self.redis.hget(keys.agent_users(), name)
        if raw is None:
            raise BadRequest(f"no agent named {name!r}", status=404)
        data = json.loads(raw)
        if role is not None:
            if role not in ROLES:
                raise BadRequest(f"role must be one of {', '.join(ROLES)}")
            data["role"] = role
        if display_name is not None:
            if len(display_name) > 32:
                raise BadRequest("a display name is at most 32 characters")
            data["display_name"] = display_name.strip()
        if groups is not None:
            data["groups"] = list(groups)
        if max_chats is not None:
            data["max_chats"] = max_chats
        if disabled is not None:
            data["disabled"] = disabled
        if password is not None:
            if len(password) < 8:
                raise BadRequest("a password is at least 8 characters")
            data["password_hash"] = hash_password(password)
        await self.redis.hset(keys.agent_users(), name, json.dumps(data, ensure_ascii=False))
        return _agent_from(name, data)

    async def get(self, name: str) -> Agent | None:
        record = await self._record(name)
        return None if record is None else record.agent

    async def all(self) -> list[Agent]:
        stored = await self.redis.hgetall(keys.agent_users())
        agents = {str(name): _agent_from(str(name), json.loads(raw)) for name, raw in stored.items()}
        agents.update({name: record.agent for name, record in self._configured.items()})
        return sorted(agents.values(), key=lambda a: a.name)

    async def login(self, name: str, password: str) -> Session | None:
        """A new session, or None for a wrong name or password; 429 after too many failures."""
        failures_key = keys.agent_login_failures(name[:64])
        failures = int(await self.redis.get(failures_key) or 0)
        if failures >= MAX_LOGIN_FAILURES:
            raise BadRequest("too many failed logins; try again in 15 minutes", status=429)
        record = await self._record(name)
        if record is None:
            verify_password(password, hash_password("timing"))  # same cost for unknown names
        if record is None or not verify_password(password, record.password_hash) or record.agent.disabled:
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.incr(failures_key)
                pipe.expire(failures_key, LOGIN_LOCKOUT_SECONDS)
                await pipe.execute()
            return None
        await self.redis.delete(failures_key)
        session = Session(secrets.token_urlsafe(32), record.agent, secrets.token_urlsafe(24))
        ttl = max(60, int(self.config.session_hours * 3600))
        await self.redis.set(keys.agent_session(session.token),
                             json.dumps({"name": name, "role": record.agent.role, "csrf": session.csrf}), ex=ttl)
        return session

    async def session(self, token: str) -> Session | None:
        raw = await self.redis.get(keys.agent_session(token))
        if raw is None:
            return None
        data = json.loads(raw)
        record = await self._record(data["name"])
        if record is None or record.agent.disabled:  # removed or disabled since logging in
            return None
        return Session(token, record.agent, data["csrf"])

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
        agent = None if name is None else await self.get(str(name))
        return None if agent is None or agent.disabled else agent
