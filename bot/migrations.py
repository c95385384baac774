"""The stored-data version and ``kefu migrate``.

Redis outlives the code: an upgrade starts new code on data the previous release wrote, and a
rollback starts old code on data a newer release wrote.  ``kefu:data-version`` says which
layout the data has.  Starting on data *newer* than the code is refused (the old code could
misread it or write it back in the old shape); data *older* than the code is brought forward —
at start by the first worker when every step is ``automatic`` (additive: the previous release
keeps working on the result, so a rolling upgrade is safe), otherwise only by ``kefu migrate``,
run once after stopping the old workers.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from bot import keys
from bot.errors import KefuError
from bot.storage.client import REDIS_ERRORS

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Migration:
    """Brings data from version ``to - 1`` to ``to``."""

    to: int
    description: str
    run: Callable[[aioredis.Redis], Awaitable[None]]
    automatic: bool  # safe while workers of the previous release still run


async def _first_versioned_layout(redis: aioredis.Redis) -> None:
    """Releases before the version key wrote the very layout of version 1 (keys in bot/keys.py):
    nothing moves; the version key is what is new."""


_P = keys.PREFIX
# Version 1's names (a name, or a prefix ending in ':' → the new name of the rest), frozen here:
# bot/keys.py has moved on.  Every key that a script or MULTI uses with others gets its Redis
# Cluster hash tag.  The new names come from bot/keys.py: a later layout change must freeze
# version 2's names here before it changes them there.
_RENAMED: tuple[tuple[str, Callable[[str], str]], ...] = (
    (f"{_P}transcript:", keys.transcript),
    (f"{_P}transcript-seq:", keys.transcript_seq),
    (f"{_P}lock:", keys.lock),
    (f"{_P}outbox:", keys.outbox),
    (f"{_P}channel:web:typing:", keys.web_typing),
    (f"{_P}conv:", keys.conversation),
    (f"{_P}agents:ticket:", keys.agent_ticket),  # and "<id>:notes"
    (f"{_P}agents:open:", keys.agent_open_ticket),
    (f"{_P}agents:queue", lambda _: keys.agent_queue()),
    (f"{_P}agents:active", lambda _: keys.agent_active()),
    (f"{_P}agents:owned:", keys.agent_owned),
    (f"{_P}agents:last-assigned", lambda _: keys.agent_last_assigned()),
    (f"{_P}agents:closed", lambda _: keys.agent_closed()),
    (f"{_P}agents:customer:", lambda rest: keys.agent_customer_tickets(*rest.split(":", 1))),
    (f"{_P}agents:card:", keys.agent_customer_card),
    (f"{_P}agents:identities", lambda _: keys.agent_identities()),
    (f"{_P}agents:login-attempts:", lambda rest: keys.agent_login_attempts(*rest.split(":", 1))),
    (f"{_P}admin:metrics:", keys.admin_metrics),
    (f"{_P}admin:questions", lambda _: keys.admin_questions()),
    (f"{_P}admin:unanswered", lambda _: keys.admin_unanswered()),
    (f"{_P}kb:entries", lambda _: keys.kb_entries()),
    (f"{_P}kb:version", lambda _: keys.kb_version()),
    (f"{_P}kb:audit", lambda _: keys.kb_audit()),
    (f"{_P}web:new-sessions:", lambda rest: keys.new_web_sessions(rest.rpartition(":")[0],  # IPv6 has ':'
                                                                    int(rest.rpartition(":")[2]))),
    (f"{_P}web:admitted:", keys.web_session_admitted),
)
_BATCH = 500


def _new_name(key: str) -> str | None:
    for old, new in _RENAMED:
        if key == old or (old.endswith(":") and key.startswith(old)):
            return new(key[len(old):])
    return None


async def _rename_all(redis: aioredis.Redis) -> int:
    """RENAME every version-1 key of :data:`_RENAMED` to its new name (values and TTLs as they
    are), in one SCAN and pipelined batches.  Idempotent: a moved key no longer matches, so a
    run cut off anywhere resumes where it stopped.  Returns how many moved."""
    moved = 0
    batch: list[tuple[str, str]] = []

    async def flush() -> None:
        nonlocal moved
        async with redis.pipeline(transaction=False) as pipe:
            for old, new in batch:
                pipe.rename(old, new)
            replies = await pipe.execute(raise_on_error=False)
        for reply in replies:
            if isinstance(reply, ResponseError) and "no such key" not in str(reply).lower():
                raise reply  # "no such key": SCAN returned a key twice and the first RENAME moved it
            moved += reply is True
        batch.clear()

    async for key in redis.scan_iter(match=f"{keys.PREFIX}*", count=_BATCH):
        new = _new_name(str(key))
        if new is not None:
            batch.append((str(key), new))
        if len(batch) >= _BATCH:
            await flush()
    if batch:
        await flush()
    return moved


async def _message_claims(redis: aioredis.Redis) -> int:
    """The turn's dedupe markers ``seen:msg:<channel>:<message id>`` name no conversation, so
    they are found through the message ids the moved transcripts hold, and COPIED into their
    conversation's slot (a message id two conversations share gets a marker in each); the old
    ones expire by themselves (nothing reads them any more).  Three round trips per batch of
    conversations.  Returns how many were copied."""
    copied = 0
    batch: list[str] = []

    async def flush() -> None:
        nonlocal copied
        async with redis.pipeline(transaction=False) as pipe:
            for key in batch:
                pipe.get(key)
            documents = await pipe.execute()
        found: list[tuple[str, str]] = []  # (conversation id, channel)
        for raw in documents:
            try:
                data = json.loads(raw or "")
                found.append((str(data["id"]), str(data["channel"])))
            except (ValueError, TypeError, KeyError):
                continue  # not readable: the new code will not read it either
        async with redis.pipeline(transaction=False) as pipe:
            for conversation_id, _ in found:
                pipe.lrange(keys.transcript(conversation_id), 0, -1)
            transcripts = await pipe.execute()
        async with redis.pipeline(transaction=False) as pipe:
            for (conversation_id, channel), lines in zip(found, transcripts, strict=True):
                namespace = f"msg:{channel}"
                for message_id in sorted(_message_ids(lines)):
                    pipe.copy(keys.seen(namespace, message_id), keys.message_claim(conversation_id, namespace,
                                                                                   message_id))
            copied += sum(1 for done in await pipe.execute() if done)
        batch.clear()

    async for key in redis.scan_iter(match=keys.conversation_pattern(), count=_BATCH):
        batch.append(str(key))
        if len(batch) >= _BATCH:
            await flush()
    if batch:
        await flush()
    return copied


def _message_ids(lines: list[str]) -> set[str]:
    ids = set()
    for line in lines:
        try:
            message_id = (json.loads(line).get("meta") or {}).get("message_id")
        except (ValueError, AttributeError):
            continue
        if isinstance(message_id, str) and message_id:
            ids.add(message_id)
    return ids


async def _hash_tagged_layout(redis: aioredis.Redis) -> None:
    """Rename every key a multi-key script or transaction uses to its hash-tagged name (Redis
    Cluster: one slot per call), then give each turn's dedupe marker its conversation's slot."""
    moved = await _rename_all(redis)
    copied = await _message_claims(redis)
    log.info("moved %d key(s); %d message marker(s) copied into their conversation's slot", moved, copied)


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "stamp the data version (layout unchanged from the unversioned release)",
              _first_versioned_layout, automatic=True),
    Migration(2, "hash-tagged key names, one Redis Cluster slot per script (renames every key)",
              _hash_tagged_layout, automatic=False),
)
DATA_VERSION = MIGRATIONS[-1].to  # the layout this code reads and writes
LOCK_SECONDS = 300


class DataTooNew(KefuError):
    """The store was written by a newer Kefu than this one."""


class MigrationBusy(KefuError):
    """Another process holds the migration lock."""


class MigrationNeeded(KefuError):
    """The store needs a migration that must not run under live workers: ``kefu migrate``."""


async def stored_version(redis: aioredis.Redis) -> int | None:
    """The data version in the store; 0 for data of the unversioned release; None: empty store."""
    raw = await redis.get(keys.data_version())
    if raw is not None:
        return int(raw)
    async for _ in redis.scan_iter(match=f"{keys.PREFIX}*", count=1000):
        return 0
    return None


def pending(version: int) -> list[Migration]:
    return [m for m in MIGRATIONS if m.to > version]


async def check_on_start(redis: aioredis.Redis) -> int:
    """Refuse data newer than the code; apply automatic migrations; returns the version now."""
    version = await stored_version(redis)
    if version is None:  # a new store: written by this code from the start
        await redis.set(keys.data_version(), DATA_VERSION, nx=True)
        return DATA_VERSION
    if version > DATA_VERSION:
        raise DataTooNew(f"the store holds data version {version}, newer than this Kefu understands "
                         f"({DATA_VERSION}): run the newer Kefu, or restore a backup made before the upgrade")
    todo = pending(version)
    manual = [m for m in todo if not m.automatic]
    if manual:
        raise MigrationNeeded(f"the store holds data version {version}; this Kefu needs {DATA_VERSION}: "
                              f"stop the old workers and run `kefu migrate` ({manual[0].description})")
    if todo:
        for _ in range(int(LOCK_SECONDS / 0.2)):
            try:
                await migrate(redis)
                break
            except MigrationBusy:  # another worker is on it: wait for it, then it is done
                await asyncio.sleep(0.2)
                if await redis.get(keys.data_version()) == str(DATA_VERSION):
                    break
    return DATA_VERSION


async def migrate(redis: aioredis.Redis, report: Callable[[str], None] = log.info) -> int:
    """Apply every pending migration in order, one process at a time; returns the version."""
    token = uuid.uuid4().hex
    if not await redis.set(keys.data_migration_lock(), token, nx=True, ex=LOCK_SECONDS):
        raise MigrationBusy("another process is migrating the store; try again when it is done")
    keeper = asyncio.create_task(_keep_lock(redis, token))  # a big store takes longer than the lock lasts
    try:
        version = await stored_version(redis)
        if version is None:
            await redis.set(keys.data_version(), DATA_VERSION)
            report(f"empty store: data version set to {DATA_VERSION}")
            return DATA_VERSION
        if version > DATA_VERSION:
            raise DataTooNew(f"the store holds data version {version}, newer than this Kefu ({DATA_VERSION})")
        for step in pending(version):
            await step.run(redis)
            await redis.set(keys.data_version(), step.to)  # after each step: a crash resumes there
            report(f"data version {step.to - 1} → {step.to}: {step.description}")
        if not pending(version):
            report(f"data version {version}: up to date")
        return DATA_VERSION
    finally:
        keeper.cancel()
        if await redis.get(keys.data_migration_lock()) == token:
            await redis.delete(keys.data_migration_lock())


async def _keep_lock(redis: aioredis.Redis, token: str) -> None:
    """Extend the migration lock while this process still holds it, until cancelled."""
    while True:
        await asyncio.sleep(LOCK_SECONDS / 5)
        try:
            if await redis.get(keys.data_migration_lock()) != token:
                return
            await redis.expire(keys.data_migration_lock(), LOCK_SECONDS)
        except REDIS_ERRORS:
            log.warning("could not extend the migration lock; retrying")
