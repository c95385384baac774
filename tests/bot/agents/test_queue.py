"""An honest queue, as the customer lives it through the real engine: the wait told comes from
the agents actually online; with nobody there the customer is told so and leaves a message
(and a contact) that the next agent finds first; writing while waiting is acknowledged, and an
escalation while waiting moves the customer up (shared/README.md §5–6)."""

from __future__ import annotations

import dataclasses
import itertools
import re
from pathlib import Path

import pytest
import yaml

from bot.agents.desk import HumanDesk
from bot.config import AgentsConfig, Config, IntentsConfig, load_config
from bot.errors import Forbidden, InvalidInput
from bot.runtime import Runtime
from bot.server import status_of
from bot.types import Action, ConversationState, InboundMessage, TurnResult
from tests.bot.agents.conftest import BOSS, LI, Clock, RecordingChannel

_ids = itertools.count()
ROOT = Path(__file__).resolve().parents[3]


async def start(config: Config, redis_client: object, clock: Clock) -> tuple[Runtime, HumanDesk]:
    quick = dataclasses.replace(config, intents=IntentsConfig(embeddings=False),
                                agents=AgentsConfig(queue_update_seconds=0, minutes_per_ticket=4))
    runtime = await Runtime.start(quick, redis=redis_client)  # type: ignore[arg-type]
    assert isinstance(runtime.desk, HumanDesk)
    runtime.desk.clock = clock
    runtime.desk.tickets.clock = clock
    runtime.engine.clock = clock
    runtime.desk.channels = {"web": RecordingChannel()}  # type: ignore[dict-item]
    return runtime, runtime.desk


async def say(runtime: Runtime, text: str, chat: str) -> TurnResult:
    assert isinstance(runtime.desk, HumanDesk)
    runtime.desk.clock.advance(1)  # type: ignore[attr-defined]  # one customer after another
    return await runtime.engine.handle(InboundMessage("web", chat, chat, text, f"q{next(_ids)}"))


async def test_with_nobody_online_the_customer_is_told_plainly_and_leaves_a_message(
        config: Config, redis_client: object) -> None:
    clock = Clock()
    runtime, desk = await start(config, redis_client, clock)
    first = await say(runtime, "转人工", "a")
    text = first.replies[0].text
    assert "没有人工客服在线" in text and "留言" in text and "手机号" in text
    assert "分钟" not in text  # no wait promised that nobody is there to keep
    english = await say(runtime, "I want to talk to a human", "en")
    assert "No agent is online" in english.replies[0].text and "minutes" not in english.replies[0].text

    contact = await say(runtime, "我的电话13812345678，麻烦回电", "a")
    assert "138****5678" in contact.replies[0].text  # confirmed, masked
    ticket = await desk.tickets.open_for("web:a")
    assert ticket is not None and ticket.left_message and ticket.contact == "13812345678"

    await desk.mark_online("li")  # the next agent arrives: the messages left are there, first
    clock.advance(60)
    later = await say(runtime, "这个问题你答不了", "b")  # a newer handoff, with an agent online
    assert "分钟" in later.replies[0].text
    inbox = await desk.inbox(LI)
    order = [t["conversation_id"] for t in inbox["queued"]]
    assert order[:2] == ["web:a", "web:en"] and inbox["queued"][0]["left_message"] is True
    assert inbox["queued"][0]["contact"] == "13812345678"


async def test_the_wait_comes_from_the_agents_online_and_the_queue_ahead(config: Config, redis_client: object) -> None:
    clock = Clock()
    runtime, desk = await start(config, redis_client, clock)
    await desk.mark_online("li")
    assert "约4分钟" in (await say(runtime, "转人工", "a")).replies[0].text
    assert "第2位" in (reply := (await say(runtime, "转人工", "b")).replies[0].text) and "约8分钟" in reply
    await desk.mark_online("wang")
    assert "第3位" in (reply := (await say(runtime, "转人工", "c")).replies[0].text) and "约6分钟" in reply
    await desk.set_status("wang", "away")
    assert "约16分钟" in (await say(runtime, "转人工", "d")).replies[0].text  # away wang does not count


async def test_writing_while_waiting_is_acknowledged_and_an_escalation_moves_the_customer_up(
        config: Config, redis_client: object) -> None:
    clock = Clock()
    runtime, desk = await start(config, redis_client, clock)
    await desk.mark_online("li")
    await say(runtime, "转人工", "first")
    clock.advance(1)
    await say(runtime, "找真人", "second")
    assert [t.conversation_id for t in await desk.tickets.queued()] == ["web:first", "web:second"]

    note = await say(runtime, "订单号 12345", "second")
    assert "人工客服会看到" in note.replies[0].text
    clock.advance(5)
    assert (await say(runtime, "还有发票", "second")).replies == ()  # a burst gets one answer, not one each
    clock.advance(40)
    assert "已转达" in (await say(runtime, "麻烦快一点", "second")).replies[0].text

    urgent = await say(runtime, "再不处理我就打12315投诉你们", "second")
    reply = urgent.replies[0].text
    assert "抱歉" in reply and "加急" in reply and "第1位" in reply
    assert [t.conversation_id for t in await desk.tickets.queued()] == ["web:second", "web:first"]
    ticket = await desk.tickets.open_for("web:second")
    assert ticket is not None and ticket.priority == 0 and "12315" in ticket.detail
    assert any(n["kind"] == "escalated" for n in await desk.tickets.notes(ticket.id))
    stored = await runtime.store.load_conversation("web:second")
    assert stored is not None and stored.transcript[-1].text == reply  # what was said is on record


def test_the_shipped_config_and_faq_agree_about_service_hours() -> None:
    """No fixed hours in config.yaml, so the FAQ promises none; set both or neither."""
    config = load_config(ROOT / "config.yaml")
    faq = yaml.safe_load((ROOT / "knowledge" / "default-faq.yaml").read_text(encoding="utf-8"))
    [hours] = [entry for entry in faq if entry["id"] == "support-hours"]
    clock_times = re.compile(r"\d{1,2}[:：]\d{2}")
    assert config.service_hours.weekly == {}
    for language in ("zh", "en"):
        assert not clock_times.search(hours["answer"][language]), hours["answer"][language]
    assert "留言" in hours["answer"]["zh"] and "leave a message" in hours["answer"]["en"]


async def test_a_blocked_customer_keeps_the_bot_but_reaches_no_agent_until_unblocked(
        config: Config, redis_client: object) -> None:
    clock = Clock()
    runtime, desk = await start(config, redis_client, clock)
    await desk.mark_online("li")
    await say(runtime, "转人工", "troll")
    ticket = await desk.tickets.open_for("web:troll")
    assert ticket is not None
    await desk.claim(ticket.id, LI)
    with pytest.raises(InvalidInput) as no_reason:
        await desk.block(ticket.id, LI, "  ")
    assert "reason" in str(no_reason.value)
    await desk.block(ticket.id, LI, "反复辱骂坐席")
    assert (await desk.tickets.get(ticket.id)).status == "blocked"  # type: ignore[union-attr]
    assert [b["reason"] for b in await desk.blocked()] == ["反复辱骂坐席"]

    refused = await say(runtime, "转人工，快点", "troll")
    assert "无法为您转接人工客服" in refused.replies[0].text
    assert refused.conversation.state is ConversationState.BOT and await desk.tickets.open_for("web:troll") is None
    answered = await say(runtime, "怎么退货", "troll")  # the bot still helps with the FAQ
    assert answered.decision is not None and answered.decision.action is Action.ANSWER

    with pytest.raises(Forbidden) as not_admin:
        await desk.unblock(LI, "web", "troll")
    assert status_of(not_admin.value) == 403
    await desk.unblock(BOSS, "web", "troll")
    again = await say(runtime, "转人工", "troll")
    assert "第1位" in again.replies[0].text and await desk.tickets.open_for("web:troll") is not None
