"""The web chat's state: admission of new sessions, the visitor secret, files, names, typing."""

from __future__ import annotations

import asyncio

import redis.asyncio as aioredis

from bot import keys
from bot.storage.web import WebSessions


async def test_a_new_session_is_counted_once_and_refused_over_a_limit(redis_client: aioredis.Redis) -> None:
    web = WebSessions(redis_client, 60)
    assert await web.admit("web:s1", "1.1.1.1", 7, 2, 100, 300)
    assert await web.admit("web:s1", "1.1.1.1", 7, 2, 100, 300)  # already admitted: not counted again
    assert await web.admit("web:s2", "1.1.1.1", 7, 2, 100, 300)
    assert not await web.admit("web:s3", "1.1.1.1", 7, 2, 100, 300)
    assert await web.admit("web:s3", "2.2.2.2", 7, 2, 100, 300)
    assert await redis_client.get(keys.new_web_sessions("all", 7)) == "3"
    await redis_client.set(keys.conversation("web:s4"), "{}")
    assert await web.admit("web:s4", "1.1.1.1", 7, 2, 100, 300)  # a known conversation always passes


async def test_secret_files_names_and_typing(redis_client: aioredis.Redis) -> None:
    web = WebSessions(redis_client, 60)
    secret = await web.visitor_secret()
    assert len(secret) > 30 and await WebSessions(redis_client, 60).visitor_secret() == secret
    await web.save_attachment("a1", "v_1", "image/png", "图.png", b"\x89PNG")
    assert await web.load_attachment("a1") == ("v_1", "image/png", "图.png", b"\x89PNG")
    assert await web.load_attachment("a2") is None
    await web.set_visitor_name("v_1", "张三")
    assert await web.visitor_name("v_1") == "张三" and await web.visitor_name("v_2") == ""
    await web.set_typing("web:s1", 5)
    assert 0 < await redis_client.pttl(keys.web_typing("web:s1")) <= 5000


async def test_first_messages_of_one_session_at_once_count_it_once(redis_client: aioredis.Redis) -> None:
    """The conversation check and the counting are two steps (two hash slots): concurrent first
    messages of a session, or a retry, still count it once, and a known one is never counted."""
    web = WebSessions(redis_client, 60)
    assert all(await asyncio.gather(*(web.admit("web:s9", "3.3.3.3", 8, 1, 100, 300) for _ in range(5))))
    assert await redis_client.get(keys.new_web_sessions("3.3.3.3", 8)) == "1"
    assert not await web.admit("web:s10", "3.3.3.3", 8, 1, 100, 300)  # the address's one new chat is used
    await redis_client.set(keys.conversation("web:s11"), "{}")
    assert await web.admit("web:s11", "3.3.3.3", 8, 1, 100, 300)  # known: passes without being counted
    assert await redis_client.get(keys.new_web_sessions("all", 8)) == "1"
