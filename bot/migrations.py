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
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import redis.asyncio as aioredis

from bot import keys
from bot.errors import KefuError

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


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "stamp the data version (layout unchanged from the unversioned release)",
              _first_versioned_layout, automatic=True),
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
        if await redis.get(keys.data_migration_lock()) == token:
            await redis.delete(keys.data_migration_lock())
