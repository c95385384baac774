"""A shift on the desk: presence, chat limits, auto-assignment by skill group, an agent who
disappears, transfer to a group — over the real store (memory and Redis), with a concurrency
drill on a real Redis: many workers assigning and claiming at once never give a conversation
to two agents and never put anyone over their limit."""

from __future__ import annotations

import asyncio
import dataclasses
from collections import Counter
from collections.abc import Coroutine
from typing import Any

import pytest

from bot import keys
from bot.agents.auth import Agent
from bot.agents.desk import HumanDesk
from bot.config import AgentsConfig, AgentUserConfig, Config, SkillGroupConfig, StoreConfig
from bot.errors import Conflict, NotFound
from bot.server import status_of
from bot.storage.client import connect
from bot.storage.conversations import Store
from bot.types import ConversationState
from tests.bot.agents.conftest import Clock, RecordingChannel, hand_off
from tests.conftest import REDIS_URL, require_redis

HASH = "scrypt$16384$8$1$c2FsdA==$ZGlnZXN0"  # never logged in with: these agents act through the desk
LI, WANG, ZHAO = Agent("li", "agent"), Agent("wang", "agent", ("English",)), Agent("zhao", "agent", ("售后",))


def shift_config(config: Config, *, strategy: str = "least_busy", max_chats: int = 2, groups: bool = True) -> Config:
    """li (no group), wang (English), zhao (售后); with ``groups`` English speakers and refunds
    (every test handoff's best guess is refund-time) are routed to their team."""
    users = (AgentUserConfig("li", HASH), AgentUserConfig("wang", HASH, groups=("English",)),
             AgentUserConfig("zhao", HASH, groups=("售后",)))
    teams = (SkillGroupConfig("English", languages=("en",)), SkillGroupConfig("售后", entries=("refund-*",)))
    return dataclasses.replace(config, agents=AgentsConfig(
        users=users, auto_assign=strategy, max_chats=max_chats, queue_update_seconds=0,
        offline_grace_minutes=3, groups=teams if groups else ()))


def manual(config: Config) -> Config:
    return dataclasses.replace(config, agents=dataclasses.replace(config.agents, auto_assign="off"))


def make_desk(store: Store, config: Config, clock: Clock, channel: RecordingChannel) -> HumanDesk:
    return HumanDesk(store, config, clock=clock, channels={"web": channel})  # type: ignore[dict-item]


async def owners(desk: HumanDesk) -> Counter[str]:
    return Counter(t.owner for t in await desk.tickets.active())


async def test_waiting_tickets_go_to_the_least_busy_online_agent_never_over_the_limit(
        store: Store, config: Config, clock: Clock, channel: RecordingChannel) -> None:
    desk = make_desk(store, shift_config(config, groups=False), clock, channel)
    await desk.mark_online("li")
    await desk.mark_online("wang")
    for chat in "abcde":
        await hand_off(desk, chat, ["转人工"], reason="human_request")
        clock.advance(5)
    await desk.idle()
    assert await owners(desk) == {"li": 2, "wang": 2}  # 2 chats each (the limit); one still waits
    [left] = await desk.tickets.queued()
    assert left.conversation_id == "web:e"
    joined = [text for _, text in channel.sent if "已接入" in text]
    assert len(joined) == 4
    customer = await desk.store.load_conversation("web:a")
    assert customer is not None and customer.state is ConversationState.AGENT

    with pytest.raises(Conflict) as full:  # a manual claim over the limit is refused too
        await desk.claim(left.id, LI)
    assert status_of(full.value) == 409 and "limit" in str(full.value)

    mine = [t for t in await desk.tickets.active() if t.owner == "li"]
    await desk.resolve(mine[0].id, LI)  # a slot comes free: the waiting customer gets it at once
    await desk.idle()
    assert await owners(desk) == {"li": 2, "wang": 2} and await desk.tickets.queued() == []
    assert (await desk.tickets.get(left.id)).owner == "li"  # type: ignore[union-attr]


async def test_busy_and_away_agents_get_no_new_chats_and_only_busy_counts_in_the_wait(
        store: Store, config: Config, clock: Clock, channel: RecordingChannel) -> None:
    desk = make_desk(store, shift_config(config, groups=False), clock, channel)
    await desk.mark_online("li")
    await desk.mark_online("zhao")
    await desk.set_status("li", "busy")
    await desk.set_status("zhao", "away")
    await hand_off(desk, "a", ["转人工"], reason="human_request")
    await desk.idle()
    assert await desk.tickets.active() == [] and len(await desk.tickets.queued()) == 1
    assert await desk.online_agents() == 1  # busy li is at the desk; away zhao is not
    await desk.set_status("li", "online")  # back from busy: takes the waiting customer
    await desk.idle()
    assert await owners(desk) == {"li": 1}


async def test_skill_groups_english_and_after_sales_go_to_their_team(
        store: Store, config: Config, clock: Clock, channel: RecordingChannel) -> None:
    desk = make_desk(store, shift_config(config), clock, channel)
    for name in ("li", "wang", "zhao"):
        await desk.mark_online(name)
    await hand_off(desk, "en", ["I want a person"], reason="human_request", language="en")
    await hand_off(desk, "refund", ["退款还没到"], reason="low_confidence")  # bot's best guess: refund-time
    await desk.idle()
    by_chat = {t.conversation_id: (t.owner, t.group) for t in await desk.tickets.active()}
    assert by_chat == {"web:en": ("wang", "English"), "web:refund": ("zhao", "售后")}
    english = await desk.store.load_conversation("web:en")
    assert english is not None and "Agent wang has joined" in english.transcript[-1].text


async def test_round_robin_takes_turns(store: Store, config: Config, clock: Clock, channel: RecordingChannel) -> None:
    desk = make_desk(store, shift_config(config, strategy="round_robin", max_chats=0, groups=False), clock, channel)
    for name in ("li", "wang", "zhao"):
        await desk.mark_online(name)
    got = []
    for chat in "abcdef":
        clock.advance(1)
        await hand_off(desk, chat, ["转人工"], reason="human_request")
        await desk.idle()
        got.append((await desk.tickets.open_for(f"web:{chat}")).owner)  # type: ignore[union-attr]
    assert sorted(got[:3]) == ["li", "wang", "zhao"] and got[3:] == got[:3]


async def test_an_agent_gone_past_the_grace_period_has_their_chats_requeued_at_their_old_place(
        store: Store, config: Config, clock: Clock, channel: RecordingChannel) -> None:
    desk = make_desk(store, manual(shift_config(config, groups=False)), clock, channel)
    await desk.mark_online("li")
    await hand_off(desk, "a", ["转人工"], reason="human_request")
    clock.advance(5)
    await hand_off(desk, "b", ["转人工"], reason="human_request")
    a, _b = await desk.tickets.queued()
    await desk.claim(a.id, LI)
    clock.advance(60)  # li's browser dies: no more heartbeats
    assert (await desk.sla_sweep())["returned"] == 0
    clock.advance(120)  # 3 minutes since li was last heard of (and claimed): the grace period is over
    await desk.store.redis.delete(keys.agent_sla_lock())
    assert (await desk.statuses())["li"]["status"] == "offline"
    assert (await desk.sla_sweep())["returned"] == 1
    queue = [t.conversation_id for t in await desk.tickets.queued()]
    assert queue == ["web:a", "web:b"]  # back at the front, not behind b
    conv = await desk.store.load_conversation("web:a")
    assert conv is not None and conv.state is ConversationState.WAITING and "暂时离线" in conv.transcript[-1].text
    notes = await desk.tickets.notes(a.id)
    assert notes[-1]["kind"] == "returned" and "li offline" in notes[-1]["text"]

    await desk.mark_online("wang")  # a colleague who is there keeps theirs
    await desk.claim(a.id, WANG)
    await desk.set_status("wang", "away")
    clock.advance(600)
    await desk.mark_online("wang")  # still connected (heartbeat), only away
    await desk.store.redis.delete(keys.agent_sla_lock())
    assert (await desk.sla_sweep())["returned"] == 0


async def test_logout_returns_chats_after_the_grace_period_not_before(
        store: Store, config: Config, clock: Clock, channel: RecordingChannel) -> None:
    desk = make_desk(store, manual(shift_config(config, groups=False)), clock, channel)
    await desk.mark_online("li")
    await hand_off(desk, "a", ["转人工"], reason="human_request")
    [a] = await desk.tickets.queued()
    await desk.claim(a.id, LI)
    await desk.set_status("li", "offline")  # what logout does
    clock.advance(150)
    assert await desk.return_absent() == 0
    clock.advance(60)
    assert await desk.return_absent() == 1


async def test_transfer_to_a_group_goes_to_its_next_free_agent(
        store: Store, config: Config, clock: Clock, channel: RecordingChannel) -> None:
    desk = make_desk(store, shift_config(config), clock, channel)
    await desk.mark_online("li")
    await hand_off(desk, "a", ["我要投诉"], reason="complaint")
    await desk.idle()
    [ticket] = await desk.tickets.queued()
    assert ticket.group == "售后" and ticket.owner == ""  # nobody of 售后 online: li may still claim it
    await desk.claim(ticket.id, LI)
    with pytest.raises(NotFound) as unknown:
        await desk.transfer_to_group(ticket.id, LI, "VIP")
    assert status_of(unknown.value) == 404 and "English, 售后" in str(unknown.value)
    moved = await desk.transfer_to_group(ticket.id, LI, "English")
    assert moved.status == "queued" and moved.group == "English"  # nobody of English online yet
    conv = await desk.store.load_conversation("web:a")
    assert conv is not None and "English" in conv.transcript[-1].text and conv.state is ConversationState.WAITING
    await desk.mark_online("wang")
    await desk.assign_waiting()
    assert (await desk.tickets.get(ticket.id)).owner == "wang"  # type: ignore[union-attr]


async def test_transfer_to_a_colleague_at_their_limit_is_refused(
        store: Store, config: Config, clock: Clock, channel: RecordingChannel) -> None:
    desk = make_desk(store, manual(shift_config(config, max_chats=1)), clock, channel)
    await hand_off(desk, "a", ["转人工"], reason="human_request")
    await hand_off(desk, "b", ["转人工"], reason="human_request")
    a, b = await desk.tickets.queued()
    await desk.claim(a.id, LI)
    await desk.claim(b.id, WANG)
    with pytest.raises(Conflict) as full:
        await desk.transfer(a.id, LI, WANG)
    assert status_of(full.value) == 409 and "wang already has 1 chats" in str(full.value)


async def test_many_workers_assigning_and_claiming_at_once_on_real_redis(config: Config) -> None:
    """Six workers (own connections) race auto-assignment and manual claims for 30 customers:
    every ticket has at most one owner, nobody is over the limit of 4, and the 12 slots fill."""
    require_redis()
    shift = shift_config(config, max_chats=4, groups=False)
    clients = [connect(REDIS_URL) for _ in range(6)]
    try:
        stores = [Store(client, StoreConfig()) for client in clients]
        await stores[0].clear()
        clock = Clock()
        channel = RecordingChannel()
        desks = [make_desk(s, shift, clock, channel) for s in stores]
        for chat in range(30):
            clock.advance(1)
            await hand_off(desks[0], f"r{chat}", ["转人工"], reason="human_request")
        await desks[0].idle()  # nobody online yet: all 30 wait
        assert len(await desks[0].tickets.queued()) == 30
        for name in ("li", "wang", "zhao"):
            await desks[0].mark_online(name)
        queued = [t.id for t in await desks[0].tickets.queued()]

        async def claim(desk: HumanDesk, ticket_id: str, agent: Agent) -> None:
            try:
                await desk.claim(ticket_id, agent)
            except Conflict as exc:
                assert status_of(exc) == 409

        work: list[Coroutine[Any, Any, object]] = [desk.assign_waiting() for desk in desks for _ in range(3)]
        work += [claim(desks[i % 6], queued[i % 10], (LI, WANG, ZHAO)[i % 3]) for i in range(30)]
        await asyncio.gather(*work)
        for desk in desks:
            await desk.idle()
        active = await desks[0].tickets.active()
        assert Counter(t.owner for t in active) == {"li": 4, "wang": 4, "zhao": 4}
        for name in ("li", "wang", "zhao"):
            assert await desks[0].tickets.load(name) == 4
        assert len({t.id for t in active}) == 12 and len(await desks[0].tickets.queued()) == 18
        joined = Counter(conv for conv, text in channel.sent if "已接入" in text)
        assert sorted(joined.values()) == [1] * 12  # each customer told once who joined
    finally:
        await stores[0].clear()
        for client in clients:
            await client.aclose()


async def test_an_assigned_customer_is_told_the_agents_display_name(
        store: Store, config: Config, clock: Clock, channel: RecordingChannel) -> None:
    shift = shift_config(config, groups=False)
    users = (dataclasses.replace(shift.agents.users[0], display_name="小李"),)
    desk = make_desk(store, dataclasses.replace(shift, agents=dataclasses.replace(shift.agents, users=users)),
                     clock, channel)
    await desk.mark_online("li")
    await hand_off(desk, "n", ["转人工"], reason="human_request")
    await desk.idle()
    assert await owners(desk) == {"li": 1}
    [joined] = [text for _, text in channel.sent if "已接入" in text]
    assert "小李" in joined and "li" not in joined  # "人工客服小李已接入", never the login
