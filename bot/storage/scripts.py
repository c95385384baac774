"""Lua scripts registered once and sent by their SHA, alone or with other commands in one round trip.

Every repository registers its scripts here when it is built (``register_script``), never with
``EVAL``: Redis parses a script once, and each call sends 40 bytes instead of the source.
redis-py's own pipeline support for scripts asks ``SCRIPT EXISTS`` before every pipeline —
one round trip more on the hottest path — so :class:`Batch` sends ``EVALSHA`` directly and runs
a script again by itself only when Redis answers ``NOSCRIPT`` (after a restart, a failover or a
``SCRIPT FLUSH``), which costs one extra round trip once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis
from redis.commands.core import AsyncScript
from redis.exceptions import NoScriptError, ResponseError

Arg = str | int | float


class Lua:
    """One script of one repository: its source, and the key list it is called with."""

    def __init__(self, redis: aioredis.Redis, source: str) -> None:
        self.source = source
        self._script: AsyncScript = redis.register_script(source)

    @property
    def sha(self) -> str:
        return str(self._script.sha)

    async def __call__(self, keys: Sequence[str], args: Sequence[Arg] = ()) -> Any:
        """Run it now (``EVALSHA``; loaded and retried once if Redis forgot it)."""
        return await self._script(keys=list(keys), args=list(args))


@dataclass
class _Call:
    script: Lua | None
    keys: tuple[str, ...]
    args: tuple[Arg, ...]
    after_scripts: bool = False  # WAIT: must follow every write of the batch, a retried script too


@dataclass
class Batch:
    """Scripts and plain commands sent in one non-transactional pipeline (one round trip).

    Replies come back in order; an error reply is returned as its exception, not raised (as
    ``raise_on_error=False``), so one failed statistic never hides the turn's own reply."""

    redis: aioredis.Redis
    calls: list[_Call] = field(default_factory=list)

    def script(self, lua: Lua, keys: Sequence[str], args: Sequence[Arg] = ()) -> int:
        """Queue ``lua``; returns the index of its reply."""
        self.calls.append(_Call(lua, tuple(keys), tuple(args)))
        return len(self.calls) - 1

    def command(self, *parts: Arg, after_scripts: bool = False) -> int:
        """Queue a plain command; ``after_scripts`` repeats it after a script that had to be reloaded."""
        self.calls.append(_Call(None, (), parts, after_scripts))
        return len(self.calls) - 1

    async def execute(self) -> list[Any]:
        async with self.redis.pipeline(transaction=False) as pipe:
            for call in self.calls:
                if call.script is None:
                    pipe.execute_command(*call.args)
                else:
                    # as a plain command: a cluster client's pipeline refuses ``evalsha()`` but routes
                    # EVALSHA by its keys (one slot per script, see bot/keys.py)
                    pipe.execute_command("EVALSHA", call.script.sha, len(call.keys), *call.keys, *call.args)
            replies: list[Any] = await pipe.execute(raise_on_error=False)
        reloaded = False
        for i, (call, reply) in enumerate(zip(self.calls, replies, strict=True)):
            if call.script is not None and isinstance(reply, NoScriptError):
                reloaded = True
                try:
                    replies[i] = await call.script(call.keys, call.args)
                except ResponseError as exc:
                    replies[i] = exc
            elif reloaded and call.after_scripts:
                try:
                    replies[i] = await self.redis.execute_command(*call.args)  # type: ignore[no-untyped-call, unused-ignore]
                except ResponseError as exc:
                    replies[i] = exc
        return replies
