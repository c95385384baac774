"""Scripted conversations through the real engine, store and intent layer."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import threading

import redis.asyncio as aioredis

from bot import keys
from bot.config import Config, SecurityConfig
from bot.runtime import Runtime
from bot.storage.conversations import TurnStart
from bot.types import Action, Choice, Conversation, ConversationState, Decision, InboundMessage, Role, TurnResult
from intents.base import IntentLayer

_ids = itertools.count()


async def say(runtime: Runtime, text: str, chat: str = "c1", message_id: str | None = None) -> TurnResult:
    mid = message_id or f"m{next(_ids)}"
    return await runtime.engine.handle(InboundMessage("web", chat, chat, text, mid))


async def test_answers_a_faq_in_chinese_and_english(runtime: Runtime) -> None:
    result = await say(runtime, "怎么退货")
    assert result.decision is not None and result.decision.action is Action.ANSWER
    entry = runtime.knowledge.kb.get(result.decision.entry_id or "")
    assert entry is not None
    assert result.replies[0].text == entry.answer["zh"]

    result = await say(runtime, "How do I send an item back?", chat="c2")
    assert result.decision is not None and result.decision.action is Action.ANSWER
    assert result.decision.entry_id == entry.id
    assert result.replies[0].text == entry.answer["en"]


async def test_complaint_hands_off_with_apology_and_context(runtime: Runtime) -> None:
    await runtime.desk.mark_online("li")  # type: ignore[attr-defined]  # someone to promise a wait for
    await say(runtime, "退款多久到账")
    result = await say(runtime, "我要投诉你们，太差劲了")
    assert result.decision is not None and result.decision.action is Action.HANDOFF
    assert result.handoff is not None and result.handoff.reason == "complaint"
    text = result.replies[0].text
    assert "抱歉" in text and "人工客服" in text and "分钟" in text
    assert result.conversation.state is ConversationState.WAITING
    stored = await runtime.store.load_conversation("web:c1")
    assert stored is not None and stored.state is ConversationState.WAITING
    assert stored.transcript[0].text == "退款多久到账"
    assert len(stored.transcript) == 4


async def test_while_waiting_messages_join_the_ticket_and_cancel_returns_to_bot(runtime: Runtime) -> None:
    await say(runtime, "转人工")
    first = await say(runtime, "订单号是 12345")
    assert first.decision is None  # not classified by the bot
    assert "人工客服" in first.replies[0].text
    second = await say(runtime, "还有一张照片")
    assert second.replies == ()  # the hold note is not repeated
    cancel = await say(runtime, "不用了")
    assert cancel.conversation.state is ConversationState.BOT
    assert "取消" in cancel.replies[0].text
    back = await say(runtime, "怎么退货")
    assert back.decision is not None and back.decision.action is Action.ANSWER


async def test_duplicate_message_id_is_one_turn(runtime: Runtime) -> None:
    first = await say(runtime, "怎么退货", message_id="wx-1")
    again = await say(runtime, "怎么退货", message_id="wx-1")
    assert first.replies and not first.duplicate
    assert again.duplicate and again.replies == ()
    stored = await runtime.store.load_conversation("web:c1")
    assert stored is not None and len(stored.transcript) == 2


async def test_smalltalk_is_short_and_never_handed_off(runtime: Runtime) -> None:
    for text, chat in (("你好", "s1"), ("thanks!", "s2"), ("你是机器人吗", "s3"), ("bye", "s4")):
        result = await say(runtime, text, chat=chat)
        assert result.decision is not None and result.decision.action is Action.SMALLTALK, text
        assert result.handoff is None
    hello = await say(runtime, "hello", chat="s5")
    assert hello.replies[0].text.startswith("Hello")


async def test_clarify_then_pick_by_number(runtime: Runtime) -> None:
    """Force a clarify by offering two entries, then answer "2"."""
    kb = runtime.knowledge.kb
    first, second = kb.entries[0].id, kb.entries[1].id
    conv = (await say(runtime, "你好", chat="k1")).conversation
    await runtime.store.save_conversation(conv.evolve(pending_suggestions=(first, second)))
    result = await say(runtime, "2", chat="k1")
    assert result.decision is not None and result.decision.entry_id == second
    assert result.replies[0].text == kb.entries[1].answer["zh"]
    assert result.conversation.pending_suggestions == ()


async def test_out_of_scope_hands_off_as_low_confidence(runtime: Runtime) -> None:
    result = await say(runtime, "火星上的天气怎么样，能帮我写一首诗吗")
    assert result.decision is not None
    assert result.decision.action is not Action.ANSWER
    if result.decision.action is Action.HANDOFF:
        assert result.handoff is not None and result.handoff.reason == "low_confidence"
        assert "人工" in result.replies[0].text


async def test_a_flood_is_rate_limited_kept_and_answered_again_next_minute(config: Config,
                                                                          redis_client: aioredis.Redis) -> None:
    limited = dataclasses.replace(config, security=SecurityConfig(rate_limit_per_minute=3))
    runtime = await Runtime.start(limited, redis=redis_client)
    now = [1_800_000_000.0]
    runtime.engine.clock = lambda: now[0]
    for text in ("怎么退货", "退款多久到账", "How do I return an item?"):
        answered = await say(runtime, text, chat="flood")
        assert answered.decision is not None and answered.decision.action is Action.ANSWER, text
    warned = await say(runtime, "怎么退货？？", chat="flood")
    assert warned.decision is None and "太快" in warned.replies[0].text
    silent = await say(runtime, "How do I return it", chat="flood")
    assert silent.replies == ()  # said once a minute, not to every message of a flood
    assert await say(runtime, "怎么退货", chat="someone-else") is not None  # per customer, not global
    stored = await runtime.store.load_conversation("web:flood")
    assert stored is not None
    kept = [line.text for line in stored.transcript if line.role is Role.CUSTOMER]
    assert kept[-2:] == ["怎么退货？？", "How do I return it"]  # nothing lost: an agent can still read them
    now[0] += 60
    again = await say(runtime, "怎么开发票", chat="flood")
    assert again.decision is not None and again.decision.action is Action.ANSWER


async def test_a_retry_after_a_worker_died_mid_turn_is_answered_once(config: Config,
                                                                      redis_client: aioredis.Redis) -> None:
    short = dataclasses.replace(config, store=dataclasses.replace(config.store, conversation_lock_seconds=1))
    runtime = await Runtime.start(short, redis=redis_client)
    # a worker claimed wx-9 and was killed before saving the turn: its claim lapses with its lock
    assert await redis_client.set(keys.message_claim("web:c1", "msg:web", "wx-9"), "run:dead-worker", nx=True, ex=1)
    assert (await say(runtime, "怎么退货", message_id="wx-9")).duplicate  # maybe still running: not twice
    await asyncio.sleep(1.2)
    retried = await say(runtime, "怎么退货", message_id="wx-9")
    assert not retried.duplicate and retried.decision is not None and retried.decision.action is Action.ANSWER
    await asyncio.sleep(1.2)  # a finished turn is remembered for the whole dedupe period, not the claim
    assert (await say(runtime, "怎么退货", message_id="wx-9")).duplicate


class ThreadWatcher:
    """The real intent layer, noting which thread each decision ran on."""

    def __init__(self, inner: IntentLayer) -> None:
        self.inner = inner
        self.threads: list[int] = []

    def is_quick(self, text: str, conversation: Conversation) -> bool:
        return self.inner.is_quick(text, conversation)

    def decide(self, text: str, conversation: Conversation, choice: Choice | None = None) -> Decision:
        self.threads.append(threading.get_ident())
        return self.inner.decide(text, conversation, choice)


async def test_a_repeated_question_is_decided_on_the_loop_a_new_one_in_a_worker_thread(runtime: Runtime) -> None:
    watcher = ThreadWatcher(runtime.engine.intents())
    runtime.engine.intents = lambda: watcher
    loop_thread = threading.get_ident()
    question = f"请问退货运费谁来承担呢 (#{next(_ids)})"  # new to this process's vector memory
    first = await say(runtime, question, chat="first-asker")
    again = await say(runtime, question, chat="second-asker")
    assert watcher.threads[0] != loop_thread  # the model ran: never on the event loop
    assert watcher.threads[1] == loop_thread  # its vector is remembered: no thread hop
    assert first.decision is not None and again.decision is not None
    assert (again.decision.action, again.decision.entry_id) == (first.decision.action, first.decision.entry_id)


async def test_a_resend_while_the_first_copy_is_answered_is_told_to_retry(runtime: Runtime) -> None:
    # another worker has claimed wx-20 and is mid-turn: the resend must not pass for "answered"
    other = await runtime.store.begin_turn("web:c20", "msg:web", "wx-20")
    assert isinstance(other, TurnStart)
    busy = await say(runtime, "怎么退货", chat="c20", message_id="wx-20")
    assert busy.duplicate and busy.in_progress and busy.replies == ()
    await runtime.store.end_turn("web:c20", other, "msg:web", "wx-20", done=False)  # that turn failed
    retried = await say(runtime, "怎么退货", chat="c20", message_id="wx-20")
    assert not retried.duplicate and retried.decision is not None and retried.decision.action is Action.ANSWER
    done = await say(runtime, "怎么退货", chat="c20", message_id="wx-20")
    assert done.duplicate and not done.in_progress


async def test_a_turn_saved_but_never_marked_done_is_not_answered_twice(runtime: Runtime) -> None:
    first = await say(runtime, "怎么退货", chat="c21", message_id="wx-21")
    assert first.replies
    # the worker died (or Redis failed) after saving the turn and before marking it: the claim lapses
    await runtime.store.redis.delete(keys.message_claim("web:c21", "msg:web", "wx-21"))
    again = await say(runtime, "怎么退货", chat="c21", message_id="wx-21")
    assert again.duplicate and not again.in_progress and again.replies == ()
    stored = await runtime.store.load_conversation("web:c21")
    assert stored is not None
    assert [line.role for line in stored.transcript] == [Role.CUSTOMER, Role.BOT]
    assert [line.seq for line in stored.transcript] == [1, 2]
    assert (await say(runtime, "怎么退货", chat="c21", message_id="wx-21")).duplicate  # now remembered as done
