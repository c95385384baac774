"""The human desk's records besides tickets: customer cards, the blocked list, satisfaction
surveys and ratings, agent presence, follow-up reminders and the SLA sweep's lease.

Documents are JSON; a customer is known by an identity ``channel:user_id``, and linked
identities map to one card.  Ratings are a stream (reporting reads ranges of it); follow-ups a
sorted set by due time, so "what is due" is one range read and only one worker wins each.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

import redis.asyncio as aioredis

from bot import keys


class DeskRecords:
    """Owner of the ``agents:`` keys that are not tickets, accounts or sessions."""

    def __init__(self, redis: aioredis.Redis) -> None:
        self.redis = redis

    # --- customers ------------------------------------------------------------------------------

    async def card(self, identity: str) -> tuple[str, dict[str, Any] | None]:
        """The customer id ``identity`` belongs to (itself when not linked) and its card, if any."""
        customer_id = str(await self.redis.hget(keys.agent_identities(), identity) or identity)
        raw = await self.redis.get(keys.agent_customer_card(customer_id))
        return customer_id, (dict(json.loads(raw)) if raw else None)

    async def save_card(self, customer_id: str, card: Mapping[str, Any]) -> None:
        await self.redis.set(keys.agent_customer_card(customer_id), json.dumps(card, ensure_ascii=False))

    async def link(self, customer_id: str, card: Mapping[str, Any], identities: Sequence[str], merged_id: str) -> None:
        """Save the merged card, point every identity at it and drop the card it absorbed, at once."""
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.set(keys.agent_customer_card(customer_id), json.dumps(card, ensure_ascii=False))
            for identity in identities:
                pipe.hset(keys.agent_identities(), identity, customer_id)
            if merged_id != customer_id:
                pipe.delete(keys.agent_customer_card(merged_id))
            await pipe.execute()

    async def is_blocked(self, identity: str) -> bool:
        return bool(await self.redis.hexists(keys.agent_blocked(), identity))

    async def block(self, identity: str, record: Mapping[str, Any]) -> None:
        await self.redis.hset(keys.agent_blocked(), identity, json.dumps(record, ensure_ascii=False))

    async def blocked(self) -> list[dict[str, Any]]:
        rows: dict[str, str] = await self.redis.hgetall(keys.agent_blocked())  # type: ignore[assignment]
        return [dict(json.loads(raw)) for raw in rows.values()]

    async def unblock(self, identity: str) -> bool:
        return bool(await self.redis.hdel(keys.agent_blocked(), identity))

    # --- satisfaction ---------------------------------------------------------------------------

    async def survey(self, conversation_id: str) -> dict[str, Any] | None:
        """The survey the conversation is answering ({ticket, stage, agent}), if any."""
        raw = await self.redis.get(keys.agent_survey(conversation_id))
        return None if raw is None else dict(json.loads(raw))

    async def save_survey(self, conversation_id: str, survey: Mapping[str, Any], ttl_seconds: int) -> None:
        await self.redis.set(keys.agent_survey(conversation_id), json.dumps(survey), ex=ttl_seconds)

    async def end_survey(self, conversation_id: str) -> None:
        await self.redis.delete(keys.agent_survey(conversation_id))

    async def add_rating(self, fields: Mapping[str, str]) -> None:
        await self.redis.xadd(keys.agent_ratings(), dict(fields))  # type: ignore[arg-type]

    async def latest_ratings(self, limit: int) -> list[tuple[str, dict[str, str]]]:
        """(stream id, fields), newest first."""
        rows: list[tuple[str, dict[str, str]]] = await self.redis.xrevrange(  # type: ignore[assignment]
            keys.agent_ratings(), count=limit)
        return rows

    async def ratings_since(self, since_ms: int) -> list[tuple[str, dict[str, str]]]:
        """(stream id, fields), oldest first, from ``since_ms`` (milliseconds since the epoch)."""
        rows: list[tuple[str, dict[str, str]]] = await self.redis.xrange(  # type: ignore[assignment]
            keys.agent_ratings(), min=str(since_ms))
        return rows

    # --- presence -------------------------------------------------------------------------------

    async def heartbeat(self, agent: str, at: float) -> None:
        await self.redis.zadd(keys.agent_presence(), {agent: at})

    async def last_seen(self) -> dict[str, float]:
        rows: list[tuple[str, float]] = await self.redis.zrange(  # type: ignore[assignment]
            keys.agent_presence(), 0, -1, withscores=True)
        return {str(name): float(score) for name, score in rows}

    async def chosen_statuses(self) -> dict[str, dict[str, Any]]:
        """Agent → {status, since} as each chose it in the console."""
        rows: dict[str, str] = await self.redis.hgetall(keys.agent_status())  # type: ignore[assignment]
        return {str(name): dict(json.loads(raw)) for name, raw in rows.items()}

    async def chosen_status(self, agent: str) -> dict[str, Any] | None:
        raw = await self.redis.hget(keys.agent_status(), agent)
        return None if raw is None else dict(json.loads(raw))

    async def choose_status(self, agent: str, presence: Mapping[str, Any]) -> None:
        await self.redis.hset(keys.agent_status(), agent, json.dumps(presence))

    # --- follow-ups and the SLA sweep -----------------------------------------------------------

    async def add_follow_up(self, reminder: Mapping[str, Any], due: float) -> None:
        await self.redis.zadd(keys.agent_followups(), {json.dumps(reminder, ensure_ascii=False): due})

    async def follow_ups(self) -> list[dict[str, Any]]:
        """Every pending reminder, soonest first."""
        rows: list[str] = await self.redis.zrange(keys.agent_followups(), 0, -1)  # type: ignore[assignment]
        return [dict(json.loads(raw)) for raw in rows]

    async def take_due_follow_ups(self, now: float) -> AsyncIterator[dict[str, Any]]:
        """The reminders due by ``now``, each as this caller removes it: only one worker wins each."""
        due: list[str] = await self.redis.zrangebyscore(keys.agent_followups(), "-inf", now)  # type: ignore[assignment]
        for raw in due:
            if await self.redis.zrem(keys.agent_followups(), raw):
                yield dict(json.loads(raw))

    async def sla_lease(self, seconds: int) -> bool:
        """True for the one worker that may run the SLA sweep for the next ``seconds``."""
        return bool(await self.redis.set(keys.agent_sla_lock(), "1", nx=True, ex=seconds))
