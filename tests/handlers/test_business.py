"""Business actions: a knowledge entry that names a rasa-sdk action (the order-status example).

The real rasa-sdk executes the example's ``ActionOrderStatus``, which calls a stand-in order API
over loopback HTTP; the scripted conversations go through the real engine and store.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from bot.config import ActionsConfig, Config, HandoffConfig
from bot.runtime import Runtime
from bot.storage.conversations import Store
from bot.types import (
    Action,
    ActionRun,
    Conversation,
    ConversationState,
    Decision,
    InboundMessage,
    Intent,
    TurnResult,
)
from examples.order_status.order_api import create_app as order_api_app
from handlers import business, respond
from handlers.actions.call import ASK, DONE, FAILED, HANDOFF, action_call, run_from_result
from handlers.actions.runner import InProcessRunner, RemoteRunner
from knowledge.schema import load_kb, parse_kb
from tests.bot.rasa.loopback import free_port, in_thread

pytest.importorskip("rasa_sdk")

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "order_status"
ACTIONS_MODULE = "examples.order_status.actions"
HANDOFF_CONFIG = HandoffConfig(expected_wait_minutes=7)
KB = parse_kb("""
- id: order-status
  questions: [查订单]
  action: action_order_status
  answer: {zh: "订单 {order_number}：{order_status}，预计 {eta} 送达。", en: "Order {order_number} is {order_status}."}
- id: store-hours
  questions: [几点开门]
  answer: {zh: 每天九点开门。}
""")
CONV = Conversation.start(InboundMessage("web", "u", "c", "x", "m"))


def decided(run: ActionRun, language: str = "zh") -> Decision:
    return Decision(Action.ANSWER, language, Intent.FAQ, 0.9, entry_id="order-status", action_run=run)


# --- pure: an action's result → replies and state -------------------------------------------------

def test_done_action_fills_the_entry_template_from_its_slots() -> None:
    run = ActionRun("action_order_status", DONE, (), {"order_number": "A1", "order_status": "运输中", "eta": "明天",
                                                     "requested_slot": None})
    outcome = respond(decided(run), CONV.evolve(pending_action="action_order_status"), KB, HANDOFF_CONFIG)
    assert [r.text for r in outcome.replies] == ["订单 A1：运输中，预计 明天 送达。"]
    assert outcome.handoff is None
    assert outcome.conversation.pending_action == ""
    assert outcome.conversation.slots["order_number"] == "A1" and "requested_slot" not in outcome.conversation.slots


def test_action_messages_are_the_reply_when_it_writes_them() -> None:
    run = ActionRun("action_order_status", DONE, ("已为您查到：已签收。",))
    outcome = respond(decided(run), CONV, KB, HANDOFF_CONFIG)
    assert [r.text for r in outcome.replies] == ["已为您查到：已签收。"]


def test_asking_action_keeps_itself_pending() -> None:
    run = ActionRun("action_order_status", ASK, ("请告诉我订单号",), {"requested_slot": "order_number"})
    outcome = respond(decided(run), CONV.evolve(failures=1), KB, HANDOFF_CONFIG)
    assert [r.text for r in outcome.replies] == ["请告诉我订单号"]
    assert outcome.conversation.pending_action == "action_order_status"
    assert outcome.conversation.failures == 0  # understood: earlier misunderstandings no longer count
    assert outcome.handoff is None
    again = respond(decided(run), outcome.conversation, KB, HANDOFF_CONFIG)
    assert again.conversation.failures == 1  # asked again: that one counts towards a handoff


@pytest.mark.parametrize("run", [
    ActionRun("action_order_status", FAILED, detail="ConnectError: refused"),
    ActionRun("action_order_status", DONE, (), {"order_number": "A1"}),  # template needs slots it did not set
    ActionRun("action_order_status", DONE),  # said nothing at all
])
def test_failed_or_silent_action_apologises_and_hands_off(run: ActionRun) -> None:
    outcome = respond(decided(run), CONV.evolve(pending_action="action_order_status"), KB, HANDOFF_CONFIG)
    text = outcome.replies[0].text
    assert "抱歉" in text and "人工客服" in text and "7分钟" in text
    assert "{" not in text and "Error" not in text  # never a template hole or a stack trace
    assert outcome.handoff is not None and outcome.handoff.reason == "action_failed"
    assert outcome.conversation.pending_action == ""


def test_action_asking_for_a_human_hands_off_in_english() -> None:
    outcome = respond(decided(ActionRun("action_order_status", HANDOFF), "en"), CONV, KB, HANDOFF_CONFIG)
    assert outcome.handoff is not None and outcome.handoff.reason == "action_handoff"
    assert "human colleague" in outcome.replies[0].text


def test_action_entry_answered_without_a_runner_hands_off() -> None:
    outcome = respond(Decision(Action.ANSWER, "zh", Intent.FAQ, 0.9, entry_id="order-status"), CONV, KB, HANDOFF_CONFIG)
    assert outcome.handoff is not None and outcome.handoff.reason == "action_failed"


def test_moving_on_to_another_question_clears_the_pending_action() -> None:
    outcome = respond(Decision(Action.ANSWER, "zh", Intent.FAQ, 0.9, entry_id="store-hours"),
                      CONV.evolve(pending_action="action_order_status"), KB, HANDOFF_CONFIG)
    assert outcome.replies[0].text == "每天九点开门。" and outcome.conversation.pending_action == ""


def test_render_leaves_no_hole() -> None:
    assert business.render("{a} and {b}", {"a": 1, "b": "x"}) == "1 and x"
    assert business.render("{a} and {b}", {"a": 1}) == ""
    assert business.render("{a.__class__}", {"a": 1}) == ""


# --- the rasa-sdk wire format ---------------------------------------------------------------------

def test_action_call_is_what_rasa_sdk_reads() -> None:
    from rasa_sdk import Tracker

    conv = CONV.evolve(slots={"order_number": "A1"}, language="en")
    call = action_call("action_order_status", "where is it", conv, "en", "order-status", 0.8, now=100.0)
    assert set(call) == {"next_action", "sender_id", "tracker", "domain", "version"}
    tracker = Tracker.from_dict(call["tracker"])
    assert tracker.sender_id == "web:c"
    assert tracker.get_slot("order_number") == "A1" and tracker.get_slot("kefu_language") == "en"
    assert tracker.latest_message["text"] == "where is it"
    assert tracker.get_intent_of_latest_message() == "order-status"


def test_result_statuses() -> None:
    slot = {"event": "slot", "name": "requested_slot", "value": "order_number", "timestamp": None}
    assert run_from_result("a", {"events": [slot], "responses": [{"text": "号码？"}]}).status == ASK
    assert run_from_result("a", {"events": [{"event": "followup", "name": "action_kefu_handoff"}],
                                 "responses": []}).status == HANDOFF
    done = run_from_result("a", {"events": [], "responses": [{"text": "ok"}, {"response": "utter_x"}]})
    assert done.status == DONE and done.messages == ("ok",)
    assert run_from_result("a", {"events": "nope"}).status == FAILED


# --- the example action, run in-process by rasa-sdk against a stand-in order API --------------------

@pytest.fixture
def order_api(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    with in_thread(order_api_app()) as url:
        monkeypatch.setenv("ORDER_API_URL", url)
        yield url


def slow_api(path: str = "/orders/{number}") -> Starlette:
    import asyncio

    async def slow(request: Request) -> JSONResponse:
        await asyncio.sleep(1)
        return JSONResponse({})

    return Starlette(routes=[Route(path, slow, methods=["GET", "POST"])])


async def broken(request: Request) -> JSONResponse:
    return JSONResponse({"error": "boom"}, status_code=500)


async def run_example(runner: InProcessRunner | RemoteRunner, text: str, conv: Conversation = CONV) -> ActionRun:
    return await runner.run(action_call("action_order_status", text, conv, "zh"))


async def test_in_process_runner_answers_asks_and_fails_politely(order_api: str,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    runner = InProcessRunner(ACTIONS_MODULE, timeout_seconds=3)
    assert "action_order_status" in runner.names
    found = await run_example(runner, "我的订单 A123456 到哪了")
    assert found.status == DONE and found.slots["order_status"] == "运输中"
    assert found.slots["tracking_number"] == "SF1234567890"
    assert (await run_example(runner, "查订单")).status == ASK
    unknown = await run_example(runner, "订单 Z999999")
    assert unknown.status == ASK and "Z999999" in unknown.messages[0]
    monkeypatch.setenv("ORDER_API_URL", f"http://127.0.0.1:{free_port()}")  # nothing listens: API down
    down = await run_example(runner, "A123456")
    assert down.status == FAILED and "ConnectError" in down.detail
    missing = await runner.run(action_call("action_nope", "x", CONV, "zh"))
    assert missing.status == FAILED


async def test_in_process_runner_times_out(monkeypatch: pytest.MonkeyPatch) -> None:
    with in_thread(slow_api()) as url:
        monkeypatch.setenv("ORDER_API_URL", url)
        run = await run_example(InProcessRunner(ACTIONS_MODULE, timeout_seconds=0.3), "A123456")
    assert run.status == FAILED and "timed out" in run.detail


async def test_remote_runner_down_broken_and_slow() -> None:
    import httpx

    async with httpx.AsyncClient() as client:
        down = await run_example(RemoteRunner(f"http://127.0.0.1:{free_port()}", 1.0, client), "A123456")
        assert down.status == FAILED and "unreachable" in down.detail
        with in_thread(Starlette(routes=[Route("/webhook", broken, methods=["POST"])])) as url:
            failed = await run_example(RemoteRunner(url, 1.0, client), "A123456")
        assert failed.status == FAILED and "HTTP 500" in failed.detail
        with in_thread(slow_api("/webhook")) as url:
            slow = await run_example(RemoteRunner(url, 0.3, client), "A123456")
        assert slow.status == FAILED and "timed out" in slow.detail


# --- scripted conversations through the engine -------------------------------------------------------

_ids = itertools.count()


@pytest.fixture
async def order_runtime(config: Config, redis_client: aioredis.Redis, order_api: str) -> AsyncIterator[Runtime]:
    cfg = dataclasses.replace(config, actions=ActionsConfig(module=ACTIONS_MODULE, timeout_seconds=3))
    yield await Runtime.start(cfg, redis=redis_client, kb=load_kb(EXAMPLE / "knowledge.yaml"))


async def say(runtime: Runtime, text: str, chat: str = "o1") -> TurnResult:
    return await runtime.engine.handle(InboundMessage("web", chat, chat, text, f"b{next(_ids)}"))


async def test_order_number_in_the_message_is_answered_from_the_order_api(order_runtime: Runtime) -> None:
    result = await say(order_runtime, "我的订单 A123456 到哪了")
    assert result.decision is not None and result.decision.entry_id == "order-status"
    assert [r.text for r in result.replies] == [
        "订单 A123456 当前状态：运输中。承运快递：顺丰速运 SF Express，运单号 SF1234567890，预计 2026-11-25 送达。"]
    assert result.handoff is None
    english = await say(order_runtime, "Where is my order A654321?", chat="o2")
    assert english.replies[0].text.startswith("Order A654321 is delivered.")


async def test_with_actions_a_remembered_question_is_still_classified_on_the_loop(order_runtime: Runtime) -> None:
    """The action's I/O is the act step's, awaited on the loop: classifying stays quick (the fast path)."""
    first = await say(order_runtime, "我的订单 A123456 到哪了")
    layer = order_runtime.engine.intents()
    assert layer.is_quick("我的订单 A123456 到哪了", CONV)  # remembered vector: no thread hop
    again = await say(order_runtime, "我的订单 A123456 到哪了", chat="o9")
    assert [r.text for r in again.replies] == [r.text for r in first.replies]  # the action ran all the same


async def test_the_served_apps_recording_engine_runs_the_same_actions(config: Config, redis_client: aioredis.Redis,
                                                                       order_api: str) -> None:
    """The composed app's engine both records each turn (for the dashboard) and runs the actions."""
    from bot.admin.recorder import TurnRecorder
    from bot.app import compose

    cfg = dataclasses.replace(config, actions=ActionsConfig(module=ACTIONS_MODULE, timeout_seconds=3))
    kefu = compose(cfg, redis=redis_client)
    await kefu.runtime.load(kb=load_kb(EXAMPLE / "knowledge.yaml"))
    engine = kefu.runtime.engine
    assert any(isinstance(observer, TurnRecorder) for observer in engine.observers)
    result = await say(kefu.runtime, "我的订单 A123456 到哪了", chat="o8")
    assert result.replies[0].text.startswith("订单 A123456 当前状态：运输中")


async def test_asks_for_the_order_number_then_answers(order_runtime: Runtime) -> None:
    ask = await say(order_runtime, "查订单")
    assert "订单号" in ask.replies[0].text
    stored = await order_runtime.store.load_conversation("web:o1")
    assert stored is not None and stored.pending_action == "action_order_status"
    answer = await say(order_runtime, "A123456")
    assert answer.replies[0].text.startswith("订单 A123456 当前状态：运输中")  # still in the customer's language
    stored = await order_runtime.store.load_conversation("web:o1")
    assert stored is not None and stored.pending_action == "" and stored.slots["order_number"] == "A123456"
    assert stored.state is ConversationState.BOT


async def test_order_api_down_is_a_polite_reply_and_a_handoff(order_runtime: Runtime,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORDER_API_URL", f"http://127.0.0.1:{free_port()}")
    result = await say(order_runtime, "我的订单 A123456 到哪了")
    text = result.replies[0].text
    assert "抱歉" in text and "人工客服" in text and "Error" not in text
    assert result.handoff is not None and result.handoff.reason == "action_failed"
    assert "action_order_status" in result.handoff.detail
    assert result.conversation.state is ConversationState.WAITING


async def test_while_asked_the_customer_may_ask_something_else_or_want_a_human(order_runtime: Runtime) -> None:
    await say(order_runtime, "查订单")
    other = await say(order_runtime, "怎么退货")
    assert other.decision is not None and other.decision.entry_id == "return-policy"
    assert "7天" in other.replies[0].text
    stored = await order_runtime.store.load_conversation("web:o1")
    assert stored is not None and stored.pending_action == ""

    await say(order_runtime, "查订单", chat="o3")
    human = await say(order_runtime, "转人工", chat="o3")
    assert human.handoff is not None and human.handoff.reason == "human_request"


async def test_cancel_or_keep_failing_to_give_a_number(order_runtime: Runtime) -> None:
    await say(order_runtime, "查订单")
    cancel = await say(order_runtime, "不用了")
    assert "取消" in cancel.replies[0].text and cancel.handoff is None
    stored = await order_runtime.store.load_conversation("web:o1")
    assert stored is not None and stored.pending_action == ""

    await say(order_runtime, "查订单", chat="o4")
    again = await say(order_runtime, "订单号 Z999999", chat="o4")  # unknown: asked again, without blaming anyone
    assert "Z999999" in again.replies[0].text and again.handoff is None
    third = await say(order_runtime, "我也不知道", chat="o4")
    assert third.handoff is not None and third.handoff.reason == "repeated_failure"
    assert third.conversation.state is ConversationState.WAITING


# --- the knowledge format: `action` on an entry --------------------------------------------------------

def test_entry_may_name_an_action_and_validation_stays_strict() -> None:
    from knowledge.schema import KnowledgeError, dump_kb

    kb = load_kb(EXAMPLE / "knowledge.yaml")
    entry = kb.get("order-status")
    assert entry is not None and entry.action == "action_order_status" and "{order_number}" in entry.answer["zh"]
    assert parse_kb(dump_kb(kb)) == kb  # export → import keeps the action
    bare = parse_kb("- {id: a, questions: [查订单], action: action_order_status}").entries[0]
    assert bare.answer == {} and bare.to_json() == {"id": "a", "questions": ["查订单"], "action": "action_order_status"}
    with pytest.raises(KnowledgeError, match="may be left out only when the entry names an 'action'"):
        parse_kb("- {id: a, questions: [q]}")
    with pytest.raises(KnowledgeError, match="'action' must be an action name"):
        parse_kb("- {id: a, questions: [q], action: 'order status!'}")
    with pytest.raises(KnowledgeError, match="'answer' must be"):
        parse_kb("- {id: a, questions: [q], action: action_x, answer: ''}")


async def test_action_entries_survive_the_live_store(redis_client: aioredis.Redis) -> None:
    from knowledge.repository import KnowledgeRepository

    repository = KnowledgeRepository(redis_client)
    kb = load_kb(EXAMPLE / "knowledge.yaml")
    await repository.replace(kb)
    assert await repository.load() == kb


async def test_pending_action_and_slots_are_stored(store: Store) -> None:
    conv = CONV.evolve(pending_action="action_order_status", slots={"order_number": "A123456", "n": 2})
    await store.save_conversation(conv)
    loaded = await store.load_conversation(conv.id)
    assert loaded is not None and loaded.pending_action == "action_order_status"
    assert loaded.slots == {"order_number": "A123456", "n": 2}


async def test_actions_on_a_remote_action_server(config: Config, redis_client: aioredis.Redis, order_api: str) -> None:
    """actions.server_url: the bot calls a running rasa-sdk action server (here `kefu actions`) over HTTP."""
    from bot.config import IntentsConfig, KnowledgeConfig
    from bot.rasa.server import create_actions_app

    server_config = dataclasses.replace(
        config, knowledge=KnowledgeConfig(path=str(EXAMPLE / "knowledge.yaml"), cache_dir=config.knowledge.cache_dir),
        intents=IntentsConfig(embeddings=False), actions=ActionsConfig(module=ACTIONS_MODULE))
    with in_thread(create_actions_app(server_config)) as url:
        bot_config = dataclasses.replace(config, actions=ActionsConfig(server_url=url, timeout_seconds=3))
        runtime = await Runtime.start(bot_config, redis=redis_client, kb=load_kb(EXAMPLE / "knowledge.yaml"))
        ask = await say(runtime, "查订单", chat="remote")
        answer = await say(runtime, "A123456", chat="remote")
    assert "订单号" in ask.replies[0].text
    assert answer.replies[0].text.startswith("订单 A123456 当前状态：运输中")
