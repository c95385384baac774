"""Agent accounts, sessions, tokens and the login counters."""

from __future__ import annotations

import redis.asyncio as aioredis

from bot import keys
from bot.storage.agents import AgentAccounts


async def test_accounts_tokens_and_sessions(redis_client: aioredis.Redis) -> None:
    accounts = AgentAccounts(redis_client)
    await accounts.save_account("王", {"role": "agent", "display_name": "小王"})
    assert await accounts.account("王") == {"role": "agent", "display_name": "小王"}
    assert await accounts.accounts() == {"王": {"role": "agent", "display_name": "小王"}}
    await accounts.save_token("digest-1", "王")
    await accounts.save_token("digest-2", "王")
    await accounts.save_token("digest-3", "li")
    assert await accounts.token_owner("digest-1") == "王" and await accounts.token_owner("nope") is None
    assert await accounts.revoke_tokens("王") == 2 and await accounts.token_owner("digest-3") == "li"
    await accounts.save_session("tok", {"name": "王", "csrf": "c"}, 60)
    assert await accounts.session("tok") == {"name": "王", "csrf": "c"}
    assert 0 < await redis_client.ttl(keys.agent_session("tok")) <= 60
    await accounts.end_session("tok")
    assert await accounts.session("tok") is None
    assert await accounts.remove_account("王") and not await accounts.remove_account("王")


async def test_login_counters_refuse_at_the_first_limit_used_up(redis_client: aioredis.Redis) -> None:
    accounts = AgentAccounts(redis_client)
    limits = (2, 3, 100)
    assert [await accounts.reserve_login("n", "1.2.3.4", 900, limits) for _ in range(3)] == [0, 0, 1]
    assert await accounts.reserve_login("other", "1.2.3.4", 900, limits) == 0
    assert await accounts.reserve_login("third", "1.2.3.4", 900, limits) == 2  # the address is used up
    await accounts.good_login("other", "1.2.3.4")  # a success is not a failure
    assert await accounts.reserve_login("third", "1.2.3.4", 900, limits) == 0
    await accounts.unlock("n")
    assert not await redis_client.exists(keys.agent_login_attempts("pair", "n:1.2.3.4"))
    assert await redis_client.exists(keys.agent_login_attempts("address", "1.2.3.4"))
