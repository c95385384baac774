"""Scripted conversations through the real engine with the human desk behind it: the customer's
side of queueing, waiting, cancelling, the agent taking over and the survey after "resolved"."""

from __future__ import annotations

import dataclasses
import itertools

from bot.agents.desk import HumanDesk
from bot.config import AgentsConfig, Config, ServiceHoursConfig
from bot.runtime import Runtime
from bot.types import Action, ConversationState, InboundMessage, Role, TurnResult
from tests.bot.agents.conftest import LI, RecordingChannel

_ids = itertools.count()


async def say(runtime: Runtime, text: str, chat: str = "c1") -> TurnResult:
    return await runtime.engine.handle(InboundMessage("web", chat, chat, text, f"e{next(_ids)}"))


def desk_of(runtime: Runtime) -> HumanDesk:
    """The runtime's desk, delivering to a recording web channel (the server registers real ones)."""
    assert isinstance(runtime.desk, HumanDesk)
    if not runtime.desk.channels:
        runtime.desk.channels = {"web": RecordingChannel()}  # type: ignore[dict-item]
    return runtime.desk


async def test_handoff_queue_agent_resolve_and_rating_through_the_engine(config: Config, redis_client: object) -> None:
    eager = dataclasses.replace(config, agents=AgentsConfig(queue_update_seconds=0))
    runtime = await Runtime.start(eager, redis=redis_client)  # type: ignore[arg-type]
    desk = desk_of(runtime)
    first = await say(runtime, "我要投诉你们，太差劲了", chat="a")
    assert "第1位" in first.replies[0].text and "抱歉" in first.replies[0].text
    second = await say(runtime, "转人工", chat="b")
    assert "第2位" in second.replies[0].text
    stored = await runtime.store.load_conversation("web:a")
    assert stored is not None and "第1位" in stored.transcript[-1].text  # what was said is what was saved

    waiting = await say(runtime, "订单号 12345", chat="a")
    assert waiting.decision is None  # joins the ticket, not the bot
    [ticket, _] = await desk.tickets.queued()
    assert ticket.conversation_id == "web:a"

    await desk.claim(ticket.id, LI)
    await desk.idle()
    moved = await runtime.store.load_conversation("web:b")
    assert moved is not None and "第1位" in moved.transcript[-1].text  # b moved up and was told
    during = await say(runtime, "你好，在吗", chat="a")
    assert during.replies == () and during.conversation.state is ConversationState.AGENT
    await desk.send(ticket.id, LI, "在的，我是小李")
    await desk.resolve(ticket.id, LI)

    rated = await say(runtime, "5", chat="a")
    assert rated.decision is None and "意见" in rated.replies[0].text
    assert [s.payload for s in rated.replies[0].suggestions] == ["没有了"]
    done = await say(runtime, "没有了", chat="a")
    assert "感谢您的反馈" in done.replies[0].text and done.conversation.state is ConversationState.BOT
    back = await say(runtime, "怎么退货", chat="a")
    assert back.decision is not None and back.decision.action is Action.ANSWER
    final = await desk.tickets.get(ticket.id)
    assert final is not None and final.rating == 5 and final.comment == ""
    lines = (await runtime.store.load_conversation("web:a")).transcript  # type: ignore[union-attr]
    assert [line.role for line in lines if line.meta.get("kind") == "survey"] == [Role.SYSTEM, Role.BOT, Role.BOT]


async def test_asking_something_else_instead_of_rating_is_answered_by_the_bot(runtime: Runtime) -> None:
    desk = desk_of(runtime)
    await say(runtime, "转人工")
    [ticket] = await desk.tickets.queued()
    await desk.claim(ticket.id, LI)
    await desk.resolve(ticket.id, LI)
    result = await say(runtime, "怎么退货")
    assert result.decision is not None and result.decision.action is Action.ANSWER
    assert result.conversation.state is ConversationState.BOT


async def test_cancel_while_waiting_closes_the_ticket(runtime: Runtime) -> None:
    desk = desk_of(runtime)
    await say(runtime, "转人工")
    assert len(await desk.tickets.queued()) == 1
    cancel = await say(runtime, "不用了")
    assert cancel.conversation.state is ConversationState.BOT
    assert await desk.tickets.queued() == []
    again = await say(runtime, "转人工")
    assert "第1位" in again.replies[0].text  # a new request queues again


async def test_after_hours_handoff_says_when_a_human_replies(config: Config, redis_client: object) -> None:
    closed = dataclasses.replace(config, service_hours=ServiceHoursConfig(weekly={"sun": "00:00-00:01"}))
    runtime = await Runtime.start(closed, redis=redis_client)  # type: ignore[arg-type]
    result = await say(runtime, "转人工")
    assert result.handoff is not None
    assert "非服务时间" in result.replies[0].text and "周日" in result.replies[0].text
    [ticket] = await desk_of(runtime).tickets.queued()
    assert ticket.after_hours
