"""The human desk over the real store (memory and Redis): queue, claim, chat, resolve, survey."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from bot import keys
from bot.agents.desk import HumanDesk
from bot.config import Config, ServiceHoursConfig
from bot.errors import Conflict, DeliveryFailed, DomainError, Forbidden
from bot.server import status_of
from bot.storage.conversations import Store
from bot.types import ConversationState, Role, TranscriptLine
from tests.bot.agents.conftest import BOSS, LI, WANG, Clock, RecordingChannel, hand_off


async def test_handoff_opens_one_ticket_with_full_context_and_tells_the_position(desk: HumanDesk) -> None:
    await desk.mark_online("li")  # with nobody online there is no wait to promise: test_queue.py
    await hand_off(desk, "c1", ["退款多久到账", "我要投诉你们，太差劲了"])
    _conv, replies = await hand_off(desk, "c1", ["我要投诉你们，太差劲了"])  # the same handoff again: same ticket
    assert len(await desk.tickets.queued()) == 1
    assert "第1位" in replies[0].text and "分钟" in replies[0].text and "抱歉" in replies[0].text
    ticket = (await desk.tickets.queued())[0]
    detail = await desk.detail(ticket.id)
    assert detail["ticket"]["reason"] == "complaint" and detail["ticket"]["channel"] == "web"
    assert detail["ticket"]["language"] == "zh" and detail["position"] == 1
    assert "投诉" in ticket.summary and "太差劲" in ticket.summary and "退款多久到账" in ticket.summary
    assert detail["context"]["candidates"] == [{"entry_id": "refund-time", "score": 0.42, "question": "退款多久到账"}]
    assert detail["context"]["profile"]["name"] == "客户c1"
    assert [line["text"] for line in detail["transcript"]][:2] == ["退款多久到账", "我要投诉你们，太差劲了"]


async def test_complaints_jump_the_queue_then_waiting_time_orders(desk: HumanDesk, clock: Clock) -> None:
    await desk.mark_online("li")  # (messages left with nobody online rank higher: test_queue.py)
    # Telegram customers are known to the platform; an anonymous web chat's first words cannot
    # jump the queue (tests/bot/security/test_new_sessions.py)
    await hand_off(desk, "a", ["转人工"], reason="human_request", channel="telegram")
    clock.advance(10)
    await hand_off(desk, "b", ["这个问题你答不了"], reason="low_confidence", channel="telegram")
    clock.advance(10)
    _, replies = await hand_off(desk, "c", ["骗子！我要投诉"], reason="complaint", channel="telegram")
    clock.advance(10)
    await hand_off(desk, "d", ["找真人"], reason="human_request", channel="telegram")
    order = [t.conversation_id for t in await desk.tickets.queued()]
    assert order == ["telegram:c", "telegram:a", "telegram:d", "telegram:b"]
    assert "第1位" in replies[0].text


async def test_wait_estimate_grows_with_position_and_shrinks_with_agents_online(desk: HumanDesk) -> None:
    assert await desk.estimate(3) == 12  # 4 minutes per ticket, nobody online counts as one
    await desk.mark_online("li")
    await desk.mark_online("wang")
    assert await desk.estimate(3) == 6


async def test_claim_is_atomic_one_owner_among_many(desk: HumanDesk) -> None:
    await hand_off(desk, "c1", ["转人工"])
    ticket = (await desk.tickets.queued())[0]
    results = await asyncio.gather(desk.claim(ticket.id, LI), desk.claim(ticket.id, WANG),
                                   desk.claim(ticket.id, BOSS), return_exceptions=True)
    winners = [r for r in results if not isinstance(r, BaseException)]
    losers = [r for r in results if isinstance(r, Conflict)]
    assert len(winners) == 1 and len(losers) == 2 and all(status_of(e) == 409 for e in losers)
    assert await desk.tickets.queued() == []
    assert [t.owner for t in await desk.tickets.active()] == [winners[0].owner]


async def test_claim_reply_resolve_survey_rating_stored(desk: HumanDesk, channel: RecordingChannel) -> None:
    conv, _ = await hand_off(desk, "c1", ["我要投诉，快递一个星期了还没到"])
    ticket = (await desk.tickets.queued())[0]
    await desk.claim(ticket.id, LI)
    stored = await desk.store.load_conversation(conv.id)
    assert stored is not None and stored.state is ConversationState.AGENT
    assert stored.transcript[-1].role is Role.SYSTEM and "li" in stored.transcript[-1].text

    with pytest.raises(Forbidden) as not_owner:
        await desk.send(ticket.id, WANG, "我来")
    assert status_of(not_owner.value) == 403
    line, deferred = await desk.send(ticket.id, LI, "您好，我是小李，马上帮您查快递")
    assert deferred == ""
    assert line.role is Role.AGENT and line.meta["agent"] == "li"
    assert (conv.id, "您好，我是小李，马上帮您查快递") in channel.sent

    await desk.note(ticket.id, LI, "客户很着急，优先处理 VIP")
    await desk.resolve(ticket.id, LI)
    stored = await desk.store.load_conversation(conv.id)
    assert stored is not None and stored.state is ConversationState.CLOSED
    survey_line = stored.transcript[-1]
    assert survey_line.meta["kind"] == "survey" and [s["payload"] for s in survey_line.meta["suggestions"]] == \
        ["1", "2", "3", "4", "5"]
    texts = [line.text for line in stored.transcript] + [text for _, text in channel.sent]
    assert not any("VIP" in text for text in texts), "an internal note reached the customer"

    rated = await desk.survey_answer(stored, TranscriptLine(Role.CUSTOMER, "4", desk.clock()))
    assert rated is not None and rated.state is ConversationState.CLOSED and "意见" in rated.replies[0].text
    done = await desk.survey_answer(stored, TranscriptLine(Role.CUSTOMER, "小李很耐心", desk.clock()))
    assert done is not None and done.state is ConversationState.BOT
    final = await desk.tickets.get(ticket.id)
    assert final is not None and final.status == "resolved" and final.rating == 4 and final.comment == "小李很耐心"
    ratings = await desk.ratings()
    assert ratings["count"] == 1 and ratings["average"] == 4 and ratings["ratings"][0]["agent"] == "li"
    assert await desk.survey_answer(stored, TranscriptLine(Role.CUSTOMER, "5", desk.clock())) is None


async def test_a_question_instead_of_a_rating_goes_back_to_the_bot(desk: HumanDesk) -> None:
    conv, _ = await hand_off(desk, "c1", ["转人工"])
    ticket = (await desk.tickets.queued())[0]
    await desk.claim(ticket.id, LI)
    await desk.resolve(ticket.id, LI)
    assert await desk.survey_answer(conv, TranscriptLine(Role.CUSTOMER, "怎么退货", desk.clock())) is None
    assert await desk.survey_answer(conv, TranscriptLine(Role.CUSTOMER, "5", desk.clock())) is None
    final = await desk.tickets.get(ticket.id)
    assert final is not None and final.rating == 0


async def test_hand_back_returns_to_the_bot_without_a_survey(desk: HumanDesk) -> None:
    conv, _ = await hand_off(desk, "c1", ["转人工"], language="en")
    ticket = (await desk.tickets.queued())[0]
    await desk.claim(ticket.id, LI)
    await desk.hand_back(ticket.id, LI)
    stored = await desk.store.load_conversation(conv.id)
    assert stored is not None and stored.state is ConversationState.BOT and stored.handoff is None
    assert "virtual assistant" in stored.transcript[-1].text
    assert await desk.survey_answer(stored, TranscriptLine(Role.CUSTOMER, "5", desk.clock())) is None
    assert await desk.tickets.open_for(conv.id) is None
    with pytest.raises(Conflict) as again:
        await desk.resolve(ticket.id, LI)
    assert status_of(again.value) == 409


async def test_transfer_changes_owner_and_tells_the_customer(desk: HumanDesk) -> None:
    conv, _ = await hand_off(desk, "c1", ["转人工"])
    ticket = (await desk.tickets.queued())[0]
    await desk.claim(ticket.id, LI)
    moved = await desk.transfer(ticket.id, LI, WANG)
    assert moved.owner == "wang"
    with pytest.raises(DomainError):
        await desk.send(ticket.id, LI, "still me?")
    await desk.send(ticket.id, WANG, "您好，我是小王")
    stored = await desk.store.load_conversation(conv.id)
    assert stored is not None and any("wang" in line.text and line.role is Role.SYSTEM for line in stored.transcript)
    assert any(n["kind"] == "transfer" for n in await desk.tickets.notes(ticket.id))
    await desk.resolve(ticket.id, BOSS)  # an admin may close anyone's ticket


async def test_customer_cancel_removes_the_ticket_and_others_move_up(
        desk: HumanDesk, channel: RecordingChannel, clock: Clock) -> None:
    first, _ = await hand_off(desk, "c1", ["转人工"])
    clock.advance(1)
    second, replies = await hand_off(desk, "c2", ["转人工"])
    assert "第2位" in replies[0].text
    await desk.cancelled(first.evolve(state=ConversationState.BOT))
    await desk.idle()
    assert [t.conversation_id for t in await desk.tickets.queued()] == ["web:c2"]
    stored = await desk.store.load_conversation(second.id)
    assert stored is not None and "第1位" in stored.transcript[-1].text
    assert (second.id, stored.transcript[-1].text) in channel.sent


async def test_messages_while_waiting_reach_the_console_and_a_lost_ticket_is_requeued(desk: HumanDesk) -> None:
    conv, _ = await hand_off(desk, "c1", ["转人工"])
    events = desk.events.subscribe()
    await desk.events.start()
    try:
        await desk.customer_wrote(conv, TranscriptLine(Role.CUSTOMER, "订单号 12345", desk.clock()))
        event = await asyncio.wait_for(events.get(), 5)
        while event["type"] == "resync":
            event = await asyncio.wait_for(events.get(), 5)
        assert event["type"] == "message" and event["line"]["text"] == "订单号 12345"
        # a worker died after saving WAITING but before queueing: the next message queues it
        ticket = (await desk.tickets.queued())[0]
        await desk.tickets.close(ticket, "cancelled")
        await desk.customer_wrote(conv, TranscriptLine(Role.CUSTOMER, "还在吗", desk.clock()))
        assert [t.conversation_id for t in await desk.tickets.queued()] == ["web:c1"]
    finally:
        await desk.events.stop()


async def test_delivery_failure_is_reported_to_the_agent(desk: HumanDesk, channel: RecordingChannel) -> None:
    await hand_off(desk, "c1", ["转人工"])
    ticket = (await desk.tickets.queued())[0]
    await desk.claim(ticket.id, LI)
    channel.fail = "45015: response out of time limit (48-hour window closed)"
    with pytest.raises(DeliveryFailed) as failed:
        await desk.send(ticket.id, LI, "您好")
    assert status_of(failed.value) == 502 and "48-hour" in str(failed.value)
    notes = await desk.tickets.notes(ticket.id)
    assert notes[-1]["kind"] == "delivery_failed"


async def test_a_message_the_channel_queues_for_later_is_reported_not_failed(
        desk: HumanDesk, channel: RecordingChannel) -> None:
    await hand_off(desk, "c1", ["转人工"])
    ticket = (await desk.tickets.queued())[0]
    await desk.claim(ticket.id, LI)
    channel.defer = "window_closed"
    line, deferred = await desk.send(ticket.id, LI, "您好，物流已查到")
    assert line.role is Role.AGENT and "window_closed" in deferred
    assert (await desk.tickets.notes(ticket.id))[-1]["kind"] == "delivery_deferred"


async def test_unclaimed_ticket_is_escalated_once_and_follow_ups_remind(desk: HumanDesk, clock: Clock) -> None:
    await hand_off(desk, "c1", ["转人工"])
    ticket = (await desk.tickets.queued())[0]
    clock.advance(4 * 60)
    assert (await desk.sla_sweep())["escalated"] == 0
    await desk.store.redis.delete(keys.agent_sla_lock())
    clock.advance(2 * 60)
    assert (await desk.sla_sweep())["escalated"] == 1
    await desk.store.redis.delete(keys.agent_sla_lock())
    assert (await desk.sla_sweep())["escalated"] == 0
    inbox = await desk.inbox(LI)
    assert inbox["queued"][0]["escalated"] is True

    await desk.claim(ticket.id, LI)
    await desk.follow_up(ticket.id, LI, 30, "答应客户今天回复物流结果")
    assert (await desk.inbox(LI))["reminders"][0]["text"] == "答应客户今天回复物流结果"
    clock.advance(31 * 60)
    await desk.store.redis.delete(keys.agent_sla_lock())
    assert (await desk.sla_sweep())["reminded"] == 1
    await desk.store.redis.delete(keys.agent_sla_lock())
    assert (await desk.sla_sweep())["reminded"] == 0


async def test_outside_service_hours_the_customer_is_told_when_a_human_replies(
        store: Store, desk_config: Config, clock: Clock) -> None:
    config = dataclasses.replace(desk_config, service_hours=ServiceHoursConfig(weekly={"mon": "09:00-21:00"}))
    desk = HumanDesk(store, config, clock=clock)  # Monday 22:13: closed until next Monday
    _, replies = await hand_off(desk, "c1", ["我要投诉"], reason="complaint")
    assert len(replies) == 1 and "非服务时间" in replies[0].text and "9月28日（周一）09:00" in replies[0].text
    assert replies[0].text.startswith("非常抱歉")
    _, english = await hand_off(desk, "c2", ["agent please"], reason="human_request", language="en")
    assert "off duty" in english[0].text and "Mon 28 Sep, 09:00" in english[0].text
    assert all(t.after_hours for t in await desk.tickets.queued())
    clock.advance(3600)
    assert (await desk.sla_sweep())["escalated"] == 0  # nobody to escalate to at night


async def test_overnight_messages_escalate_only_after_the_shift_has_run_late(
        store: Store, desk_config: Config, clock: Clock) -> None:
    config = dataclasses.replace(desk_config, service_hours=ServiceHoursConfig(
        weekly={"mon": "09:00-21:00", "tue": "09:00-21:00"}))
    desk = HumanDesk(store, config, clock=clock)  # Monday 22:13: closed
    await hand_off(desk, "c1", ["转人工，手机 13812345678"])
    ticket = (await desk.tickets.queued())[0]
    assert "138****5678" in ticket.summary and "13812345678" not in ticket.summary
    clock.advance((10 * 60 + 47) * 60 + 60)  # Tuesday 09:01
    assert (await desk.sla_sweep())["escalated"] == 0
    await desk.store.redis.delete(keys.agent_sla_lock())
    clock.advance(5 * 60)  # 09:06: five minutes into the shift and still nobody
    assert (await desk.sla_sweep())["escalated"] == 1


async def test_earlier_tickets_are_shown_on_the_next_handoff(desk: HumanDesk) -> None:
    _conv, _ = await hand_off(desk, "c1", ["转人工"])
    ticket = (await desk.tickets.queued())[0]
    await desk.claim(ticket.id, LI)
    await desk.resolve(ticket.id, LI)
    await hand_off(desk, "c1", ["又是我，还是没解决，我要投诉"])
    again = (await desk.tickets.queued())[0]
    assert again.id != ticket.id and "第2次转人工" in again.summary
    detail = await desk.detail(again.id)
    assert [t["id"] for t in detail["earlier_tickets"]] == [ticket.id]
