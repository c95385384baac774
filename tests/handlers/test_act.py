"""The act step: which business action a decision calls for (pure), run with an injected async client."""

from __future__ import annotations

import asyncio
import dataclasses
import json

import httpx

from bot.types import Action, ActionStatus, Conversation, Decision, InboundMessage, Intent, Reason
from handlers.actions.act import BusinessActions, Run, plan
from handlers.actions.runner import RemoteRunner
from knowledge.schema import parse_kb

KB = parse_kb("""
- id: order-status
  questions: [查订单]
  action: action_order_status
  answer: {zh: "订单 {order_number}：{order_status}。"}
- id: store-hours
  questions: [几点开门]
  answer: {zh: 每天九点开门。}
""")
PLAIN_KB = parse_kb("- {id: store-hours, questions: [几点开门], answer: {zh: 每天九点开门。}}")
CONV = Conversation.start(InboundMessage("web", "u", "c", "x", "m"))
ORDER = Decision(Action.ANSWER, "zh", Intent.FAQ, 0.9, entry_id="order-status")
HOURS = Decision(Action.ANSWER, "zh", Intent.FAQ, 0.9, entry_id="store-hours")
ASKED = dataclasses.replace(CONV, pending_action="action_order_status")


def server(calls: list[dict[str, object]], delay: float = 0.0, ask: bool = False) -> httpx.MockTransport:
    """A stand-in action server: answers POST /webhook the way rasa-sdk does."""

    async def handle(request: httpx.Request) -> httpx.Response:
        calls.append(json.loads(request.content))
        await asyncio.sleep(delay)
        if ask:
            return httpx.Response(200, json={"events": [{"event": "slot", "name": "requested_slot",
                                                         "value": "order_number"}], "responses": [{"text": "号码？"}]})
        return httpx.Response(200, json={"events": [{"event": "slot", "name": "order_number", "value": "A1"}],
                                         "responses": [{"text": "已签收"}]})

    return httpx.MockTransport(handle)


def actions(transport: httpx.MockTransport) -> BusinessActions:
    return BusinessActions(RemoteRunner("http://actions.test", 1.0, httpx.AsyncClient(transport=transport)))


def test_plan_is_pure_and_names_the_action_to_run() -> None:
    assert plan(HOURS, "几点开门", CONV, KB) is HOURS
    step = plan(ORDER, "查订单", CONV, KB)
    assert isinstance(step, Run) and step.name == "action_order_status" and not step.waiting
    waiting = plan(HOURS, "A123456", ASKED, KB)
    assert isinstance(waiting, Run) and waiting.waiting
    cancelled = plan(HOURS, "不用了", ASKED, KB)
    assert isinstance(cancelled, Decision) and cancelled.intent is Intent.ACTION_CANCELLED
    human = Decision(Action.HANDOFF, "zh", Intent.ASKED_FOR_HUMAN, 1.0, reason=Reason.HUMAN_REQUEST)
    assert plan(human, "转人工", ASKED, KB) is human  # a human request always wins


async def test_act_runs_the_action_with_the_injected_async_client() -> None:
    calls: list[dict[str, object]] = []
    acted = await actions(server(calls)).act(ORDER, "查订单 A1", CONV, KB)
    assert acted.action_run is not None and acted.action_run.status is ActionStatus.DONE
    assert acted.action_run.messages == ("已签收",) and acted.action_run.slots == {"order_number": "A1"}
    assert [c["next_action"] for c in calls] == ["action_order_status"]
    assert await actions(server(calls)).act(HOURS, "几点开门", CONV, KB) is HOURS and len(calls) == 1


async def test_a_waiting_action_then_the_entry_the_customer_moved_on_to() -> None:
    calls: list[dict[str, object]] = []
    answered = await actions(server(calls, ask=True)).act(HOURS, "几点开门", ASKED, KB)
    assert answered == HOURS and len(calls) == 1  # asked again, but the customer asked something else
    again = await actions(server(calls, ask=True)).act(ORDER, "嗯", dataclasses.replace(ASKED, failures=1), KB)
    assert (again.action, again.reason) == (Action.HANDOFF, Reason.REPEATED_FAILURE)


async def test_the_action_is_awaited_on_the_loop_without_blocking_it() -> None:
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    task = asyncio.create_task(ticker())
    try:
        await actions(server([], delay=0.2)).act(ORDER, "查订单", CONV, KB)
    finally:
        task.cancel()
    assert ticks >= 5  # the loop kept serving while the action's HTTP call was in flight


async def test_without_a_runner_action_entries_fail_and_others_are_untouched() -> None:
    none = BusinessActions(None)
    failed = await none.act(ORDER, "查订单", CONV, KB)
    assert failed.action_run is not None and failed.action_run.status is ActionStatus.FAILED
    assert await none.act(HOURS, "几点开门", ASKED, PLAIN_KB) is HOURS  # no actions at all: a stale wait is dropped
