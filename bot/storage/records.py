"""What the admin console learns from turns: daily counters, recent questions, unanswered ones.

Observers of a turn (:class:`bot.admin.recorder.TurnRecorder`) describe what they saw as a
:class:`TurnRecord`; :meth:`AdminRecords.queue` turns it into one script call that rides with
the turn's last round trip (redis-py spends more per command than Redis does, so one call for
the whole record).  The lists stay bounded and the counters expire after :data:`METRICS_TTL`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import redis.asyncio as aioredis

from bot import keys
from bot.storage.scripts import Batch, Lua

UNANSWERED_MAX = 5000
QUESTIONS_MAX = 2000
METRICS_TTL = 400 * 86400
# KEYS: metrics hash, questions, unanswered.  ARGV: metrics TTL, questions max, unanswered max,
# question JSON ('' = none), two unanswered JSONs ('' = none), then counter name/amount pairs.
_RECORD_TURN = """
for i = 7, #ARGV, 2 do redis.call('HINCRBY', KEYS[1], ARGV[i], ARGV[i + 1]) end
redis.call('EXPIRE', KEYS[1], ARGV[1])
if ARGV[4] ~= '' then redis.call('RPUSH', KEYS[2], ARGV[4]); redis.call('LTRIM', KEYS[2], -tonumber(ARGV[2]), -1) end
for i = 5, 6 do
  if ARGV[i] ~= '' then redis.call('RPUSH', KEYS[3], ARGV[i]); redis.call('LTRIM', KEYS[3], -tonumber(ARGV[3]), -1) end
end
return 1
"""


def day_of(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d")


@dataclass(frozen=True)
class TurnRecord:
    """One finished turn as the dashboard counts it: data, not Redis commands.

    ``counters`` are added to the day of ``at``; ``question`` joins the recent questions (the
    regression replays); ``unanswered`` and ``disputed`` join the unanswered list (at most
    these two per turn: the question itself, and an earlier answer this turn disputes)."""

    at: float
    counters: Mapping[str, int] = field(default_factory=dict)
    question: Mapping[str, Any] | None = None
    unanswered: Mapping[str, Any] | None = None
    disputed: Mapping[str, Any] | None = None


def _encode(row: Mapping[str, Any] | None) -> str:
    return "" if row is None else json.dumps(row, ensure_ascii=False)


class AdminRecords:
    """Owner of ``{admin}:metrics:<day>``, ``{admin}:questions`` and ``{admin}:unanswered``."""

    def __init__(self, redis: aioredis.Redis) -> None:
        self.redis = redis
        self._record = Lua(redis, _RECORD_TURN)

    def queue(self, batch: Batch, record: TurnRecord) -> None:
        """Add ``record``'s write to ``batch`` (one script call)."""
        batch.script(self._record, [keys.admin_metrics(day_of(record.at)), keys.admin_questions(),
                                    keys.admin_unanswered()],
                     [METRICS_TTL, QUESTIONS_MAX, UNANSWERED_MAX, _encode(record.question),
                      _encode(record.unanswered), _encode(record.disputed),
                      *(part for name, amount in record.counters.items() for part in (name, amount))])

    async def thumbs_down(self, at: float, row: Mapping[str, Any], counter: str = "thumbs_down") -> None:
        """Someone said an answer was wrong (the customer's thumbs-down, or ``counter``
        ``agent_wrong``: the agent who took over): ``row`` joins the unanswered ones."""
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.rpush(keys.admin_unanswered(), _encode(row))
            pipe.ltrim(keys.admin_unanswered(), -UNANSWERED_MAX, -1)
            pipe.hincrby(keys.admin_metrics(day_of(at)), "unanswered", 1)
            pipe.hincrby(keys.admin_metrics(day_of(at)), counter, 1)
            await pipe.execute()

    async def thumbs_up(self, at: float) -> None:
        await self.redis.hincrby(keys.admin_metrics(day_of(at)), "thumbs_up", 1)

    async def daily_counters(self, days: Sequence[str]) -> list[dict[str, int]]:
        """Each day's counters (``YYYY-MM-DD`` in UTC), in one round trip."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for day in days:
                pipe.hgetall(keys.admin_metrics(day))
            raw: list[dict[str, str]] = await pipe.execute()
        return [{k: int(v) for k, v in counters.items()} for counters in raw]

    async def unanswered(self, since: float = 0.0) -> list[dict[str, Any]]:
        rows = [json.loads(r) for r in await self.redis.lrange(keys.admin_unanswered(), 0, -1)]
        return [r for r in rows if float(r.get("at", 0)) >= since]

    async def resolve(self, texts: Sequence[str]) -> int:
        """Drop the unanswered records of these texts (they became knowledge); returns how many went."""
        wanted = {t.strip() for t in texts}
        removed = 0
        rows: list[str] = await self.redis.lrange(keys.admin_unanswered(), 0, -1)  # type: ignore[assignment]
        for raw in rows:
            if str(json.loads(raw).get("text", "")).strip() in wanted:
                removed += int(await self.redis.lrem(keys.admin_unanswered(), 0, raw))
        return removed

    async def recent_questions(self, limit: int = 300) -> list[str]:
        """Distinct recent customer questions, newest first, for regression replays."""
        rows = await self.redis.lrange(keys.admin_questions(), -limit * 3, -1)
        texts = [str(json.loads(r)["text"]) for r in reversed(rows)]
        unanswered = [str(json.loads(r)["text"]) for r in
                      reversed(await self.redis.lrange(keys.admin_unanswered(), -limit, -1))]
        return list(dict.fromkeys([*texts, *unanswered]))[:limit]

    async def purge(self, cutoff: float) -> int:
        """Drop the recent and unanswered questions logged before ``cutoff``; returns how many went."""
        return await _purge_log(self.redis, keys.admin_questions(), cutoff) + \
            await _purge_log(self.redis, keys.admin_unanswered(), cutoff)


async def _purge_log(redis: aioredis.Redis, key: str, cutoff: float) -> int:
    """Drop the old head of a time-ordered JSON list (newest last)."""
    old = 0
    for raw in await redis.lrange(key, 0, -1):
        try:
            at = float(json.loads(raw).get("at", 0))
        except (ValueError, TypeError, AttributeError):
            at = 0.0
        if at >= cutoff:
            break
        old += 1
    if old:
        await redis.ltrim(key, old, -1)
    return old
