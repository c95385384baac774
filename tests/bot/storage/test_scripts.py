"""Scripts are sent by SHA, in a batch too, and survive a Redis that forgot them."""

from __future__ import annotations

import uuid

import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from bot.storage.scripts import Batch, Lua
from tests.bot.storage.conftest import CountingConnection


def _fresh(source: str) -> str:
    """A script Redis has never seen (a unique comment changes its SHA)."""
    return f"-- {uuid.uuid4().hex}\n{source}"


async def test_a_script_runs_by_sha_and_is_loaded_once(redis_client: aioredis.Redis) -> None:
    lua = Lua(redis_client, _fresh("return redis.call('INCRBY', KEYS[1], ARGV[1])"))
    assert await lua(["kefu:test:n"], [2]) == 2
    assert await lua(["kefu:test:n"], [3]) == 5
    assert (await redis_client.script_exists(lua.sha)) == [True]


async def test_a_batch_is_one_round_trip_and_reloads_a_forgotten_script(counted: aioredis.Redis) -> None:
    lua = Lua(counted, _fresh("return redis.call('INCRBY', KEYS[1], ARGV[1])"))
    batch = Batch(counted)
    batch.script(lua, ["kefu:test:n"], [4])
    batch.command("SET", "kefu:test:flag", "1")
    batch.command("GET", "kefu:test:n", after_scripts=True)  # repeated once the script has run
    before = CountingConnection.sent
    assert await batch.execute() == [4, True, "4"]
    assert CountingConnection.sent - before == 5  # the batch, then EVALSHA, SCRIPT LOAD, EVALSHA, GET
    batch = Batch(counted)
    batch.script(lua, ["kefu:test:n"], [1])
    batch.command("GET", "kefu:test:n", after_scripts=True)
    before = CountingConnection.sent
    assert await batch.execute() == [5, "5"]
    assert CountingConnection.sent - before == 1  # known now: one round trip


async def test_an_error_reply_comes_back_as_its_exception(redis_client: aioredis.Redis) -> None:
    lua = Lua(redis_client, "return redis.call('INCR', KEYS[1])")
    await redis_client.set("kefu:test:text", "not a number")
    batch = Batch(redis_client)
    batch.script(lua, ["kefu:test:text"])
    batch.script(lua, ["kefu:test:n"])
    failed, counted = await batch.execute()
    assert isinstance(failed, ResponseError) and counted == 1
