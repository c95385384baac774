"""The store contract, run against memory:// and a real Redis server alike."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from bot import keys
from bot.storage.conversations import Duplicate, Store, TurnStart
from bot.types import (
    Candidate,
    Conversation,
    ConversationState,
    HandoffRequest,
    InboundMessage,
    Role,
    TranscriptLine,
)


def _conv() -> Conversation:
    msg = InboundMessage("web", "u1", "c1", "hi", "m1", 1000.0, display_name="Li Lei")
    return Conversation.start(msg)


async def test_unknown_conversation_is_none(store: Store) -> None:
    assert await store.load_conversation("web:nobody") is None


async def test_conversation_round_trip_with_transcript(store: Store) -> None:
    conv = _conv().evolve(
        state=ConversationState.WAITING, language="en", pending_suggestions=("a", "b"), failures=1,
        handoff=HandoffRequest("complaint", "threatens to report to 12315", (Candidate("refund", 0.4, "退款"),)),
    )
    lines = [TranscriptLine(Role.CUSTOMER, "退款还没到", 1.0, {"message_id": "m1"}),
             TranscriptLine(Role.BOT, "抱歉", 2.0)]
    await store.save_conversation(conv, lines)
    loaded = await store.load_conversation(conv.id)
    assert loaded is not None
    assert loaded.state is ConversationState.WAITING
    assert loaded.language == "en"
    assert loaded.pending_suggestions == ("a", "b")
    assert loaded.handoff == conv.handoff
    assert loaded.profile.name == "Li Lei"
    assert [line.text for line in loaded.transcript] == ["退款还没到", "抱歉"]
    assert loaded.transcript[0].meta == {"message_id": "m1"}


async def test_transcript_is_bounded_and_expires(store: Store) -> None:
    conv = _conv()
    for i in range(60):
        await store.save_conversation(conv, [TranscriptLine(Role.CUSTOMER, f"line {i}", float(i))])
    loaded = await store.load_conversation(conv.id)
    assert loaded is not None
    assert len(loaded.transcript) == 50
    assert loaded.transcript[-1].text == "line 59"
    assert loaded.transcript[0].text == "line 10"
    ttl = await store.redis.ttl(keys.transcript(conv.id))
    assert 0 < ttl <= 30 * 86_400
    assert 0 < await store.redis.ttl(keys.conversation(conv.id)) <= 30 * 86_400


async def test_first_time_is_true_once_even_concurrently(store: Store) -> None:
    results = await asyncio.gather(*(store.first_time("msg:wechat", "123") for _ in range(20)))
    assert results.count(True) == 1
    await store.forget("msg:wechat", "123")
    assert await store.first_time("msg:wechat", "123") is True


async def test_conversation_lock_serialises_turns(store: Store) -> None:
    order: list[str] = []

    async def turn(name: str) -> None:
        async with store.conversation_lock("web:c1"):
            order.append(f"{name}-in")
            await asyncio.sleep(0.05)
            order.append(f"{name}-out")

    await asyncio.gather(turn("a"), turn("b"))
    assert order in (["a-in", "a-out", "b-in", "b-out"], ["b-in", "b-out", "a-in", "a-out"])


async def test_clear_removes_only_kefu_keys(store: Store) -> None:
    await store.redis.set("someone-else", "1")
    await store.save_conversation(_conv())
    await store.clear()
    assert await store.redis.get("someone-else") == "1"
    assert await store.load_conversation("web:c1") is None
    await store.redis.delete("someone-else")


@pytest.mark.parametrize("url", ["http://x", "postgres://y"])
def test_bad_store_url_is_a_config_error(url: str) -> None:
    from bot.errors import ConfigError
    from bot.storage.client import connect

    with pytest.raises(ConfigError, match=r"store\.url"):
        connect(url)


async def test_begin_turn_claims_locks_and_loads_in_one_step(store: Store) -> None:
    conv = Conversation.start(InboundMessage("web", "u1", "u1", "hi", "m0"))
    await store.save_conversation(conv, [TranscriptLine(Role.CUSTOMER, "hi", 1.0)])
    first = await store.begin_turn(conv.id, "msg:web", "m1")
    assert isinstance(first, TurnStart) and first.conversation is not None
    assert first.conversation.transcript[0].text == "hi"
    # the same message while its turn runs: a duplicate that is not finished (the client retries)
    assert await store.begin_turn(conv.id, "msg:web", "m1") == Duplicate(in_progress=True)

    order: list[str] = []

    async def second_message() -> None:
        start = await store.begin_turn(conv.id, "msg:web", "m2")  # waits for the lock
        assert isinstance(start, TurnStart)
        order.append("second")
        await store.end_turn(conv.id, start, "msg:web", "m2", done=True)

    waiting = asyncio.create_task(second_message())
    await asyncio.sleep(0.1)
    order.append("first")
    await store.end_turn(conv.id, first, "msg:web", "m1", done=True)
    await waiting
    assert order == ["first", "second"]
    assert await store.begin_turn(conv.id, "msg:web", "m1") == Duplicate(in_progress=False)  # done: remembered


async def test_a_failed_turn_lets_the_retry_in(store: Store) -> None:
    start = await store.begin_turn("web:u2", "msg:web", "m1")
    assert isinstance(start, TurnStart) and start.conversation is None
    await store.end_turn("web:u2", start, "msg:web", "m1", done=False)
    retry = await store.begin_turn("web:u2", "msg:web", "m1")
    assert isinstance(retry, TurnStart)
    await store.end_turn("web:u2", retry, "msg:web", "m1", done=True)


async def test_lines_get_ordered_ids_that_survive_trimming(store: Store) -> None:
    conv = Conversation.start(InboundMessage("web", "u3", "u3", "hi", "m0"))
    assert await store.save_conversation(conv, [TranscriptLine(Role.CUSTOMER, "一", 1.0),
                                                TranscriptLine(Role.BOT, "二", 1.0)]) == 2
    assert await store.save_conversation(conv) == 2  # state only: no new ids
    assert await store.save_conversation(conv, [TranscriptLine(Role.AGENT, "三", 0.5)]) == 3  # clock went back
    loaded = await store.load_conversation(conv.id)
    assert loaded is not None
    assert [(line.seq, line.text) for line in loaded.transcript] == [(1, "一"), (2, "二"), (3, "三")]
    assert await store.last_seq(conv.id) == 3
    for n in range(store.config.transcript_max):
        await store.save_conversation(conv, [TranscriptLine(Role.CUSTOMER, f"m{n}", 2.0)])
    loaded = await store.load_conversation(conv.id)
    assert loaded is not None and len(loaded.transcript) == store.config.transcript_max
    assert loaded.transcript[-1].seq == 3 + store.config.transcript_max  # trimmed, never renumbered


async def test_flood_lines_go_first_and_ids_stay_ordered(store: Store) -> None:
    """Trimming drops a flood's lines (beyond the rate limit, and the bot's "slow down") before
    what the customer really said, keeps more while a ticket is open, and never renumbers."""
    limit = store.config.transcript_max
    conv = Conversation.start(InboundMessage("web", "u4", "u4", "hi", "m0"))
    await store.save_conversation(conv, [TranscriptLine(Role.CUSTOMER, "订单 202611230001234", 1.0)])
    for n in range(limit):
        await store.save_conversation(conv, [
            TranscriptLine(Role.CUSTOMER, f"在吗{n}", 2.0, {"rate_limited": True}),
            TranscriptLine(Role.BOT, "请慢一点", 2.0, {"kind": "rate_limited"})])
    loaded = await store.load_conversation(conv.id)
    assert loaded is not None and len(loaded.transcript) == limit
    assert loaded.transcript[0].text == "订单 202611230001234" and loaded.transcript[0].seq == 1
    seqs = [line.seq for line in loaded.transcript]
    assert seqs == sorted(set(seqs)) and seqs[-1] == 1 + 2 * limit == await store.last_seq(conv.id)

    waiting = Conversation.start(InboundMessage("web", "u5", "u5", "hi", "m0"))
    waiting = dataclasses.replace(waiting, state=ConversationState.WAITING)
    for n in range(3 * limit):
        await store.save_conversation(waiting, [TranscriptLine(Role.CUSTOMER, f"q{n}", 3.0)])
    loaded = await store.load_conversation(waiting.id)
    assert loaded is not None and len(loaded.transcript) == 3 * limit  # the agent keeps the context
    assert [line.seq for line in loaded.transcript] == list(range(1, 3 * limit + 1))
