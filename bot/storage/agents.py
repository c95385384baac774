"""Agent accounts, console sessions, API tokens and login-attempt counters.

Stored accounts are JSON documents in one hash; sessions are expiring JSON documents; API
tokens are kept only as their SHA-256 (the caller passes the digest); the login counters are
checked and counted in one script so parallel guesses cannot overshoot a limit.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import redis.asyncio as aioredis

from bot import keys
from bot.storage.scripts import Lua

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


def _counters(name_part: str, client: str) -> list[str]:
    return [keys.agent_login_attempts("pair", f"{name_part}:{client}"),
            keys.agent_login_attempts("address", client), keys.agent_login_attempts("name", name_part)]


class AgentAccounts:
    """Owner of ``agents:users``, ``agents:tokens``, ``agents:session:*`` and ``{login-attempts}:*``."""

    def __init__(self, redis: aioredis.Redis) -> None:
        self.redis = redis
        self._reserve = Lua(redis, _RESERVE_LOGIN)
        self._good = Lua(redis, _GOOD_LOGIN)

    async def account(self, name: str) -> dict[str, Any] | None:
        raw = await self.redis.hget(keys.agent_users(), name)
        return None if raw is None else dict(json.loads(raw))

    async def save_account(self, name: str, data: Mapping[str, object]) -> None:
        await self.redis.hset(keys.agent_users(), name, json.dumps(data, ensure_ascii=False))

    async def remove_account(self, name: str) -> bool:
        return bool(await self.redis.hdel(keys.agent_users(), name))

    async def accounts(self) -> dict[str, dict[str, Any]]:
        stored = await self.redis.hgetall(keys.agent_users())
        return {str(name): dict(json.loads(raw)) for name, raw in stored.items()}

    async def save_token(self, digest: str, name: str) -> None:
        await self.redis.hset(keys.agent_tokens(), digest, name)

    async def token_owner(self, digest: str) -> str | None:
        name = await self.redis.hget(keys.agent_tokens(), digest)
        return None if name is None else str(name)

    async def revoke_tokens(self, name: str) -> int:
        """Forget every API token of ``name``; returns how many there were."""
        doomed = [digest async for digest, owner in self.redis.hscan_iter(keys.agent_tokens()) if owner == name]
        if doomed:
            await self.redis.hdel(keys.agent_tokens(), *doomed)
        return len(doomed)

    async def save_session(self, token: str, data: Mapping[str, object], ttl_seconds: int) -> None:
        await self.redis.set(keys.agent_session(token), json.dumps(data), ex=ttl_seconds)

    async def session(self, token: str) -> dict[str, Any] | None:
        raw = await self.redis.get(keys.agent_session(token))
        return None if raw is None else dict(json.loads(raw))

    async def end_session(self, token: str) -> None:
        await self.redis.delete(keys.agent_session(token))

    async def reserve_login(self, name_part: str, client: str, window_seconds: int,
                            limits: tuple[int, int, int]) -> int:
        """Count one attempt of ``client`` on ``name_part`` unless a limit is used up: 0, or
        which limit refused it (1 the pair, 2 the address, 3 the name)."""
        return int(await self._reserve(_counters(name_part, client), [window_seconds, *limits]))

    async def good_login(self, name_part: str, client: str) -> None:
        """The attempt just counted succeeded: it is not a failure."""
        await self._good(_counters(name_part, client))

    async def unlock(self, name_part: str) -> None:
        """Lift the login limits on a name (every address)."""
        doomed = [k async for k in self.redis.scan_iter(match=keys.agent_login_attempts("pair", f"{name_part}:*"))]
        await self.redis.delete(keys.agent_login_attempts("name", name_part), *doomed)
