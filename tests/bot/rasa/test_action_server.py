"""``kefu actions`` as a Rasa assistant sees it: POST /webhook with the body Rasa sends, over HTTP.

The server runs on loopback with a real runtime (store, knowledge, desk); request bodies are
built the way Rasa builds them (``next_action``, ``sender_id``, ``tracker`` with ``slots``,
``latest_message`` and ``events`` made with rasa-sdk's own event helpers, ``domain``, ``version``).
"""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis

from bot.config import ActionsConfig, Config, IntentsConfig
from bot.runtime import Runtime
from bot.types import ConversationState, Role
from examples.order_status.order_api import create_app as order_api_app
from knowledge.schema import load_kb
from tests.bot.rasa.loopback import free_port, in_loop, in_thread

pytest.importorskip("rasa_sdk")

from rasa_sdk.events import ActionExecuted, BotUttered, SessionStarted, UserUttered

from bot.rasa.server import create_actions_app

ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = ROOT / "examples" / "order_status"
DOMAIN = {
    "version": "3.1", "session_config": {"session_expiration_time": 60, "carry_over_slots_to_new_session": True},
    "intents": ["greet", "ask_faq", "complain"], "entities": [],
    "slots": {"kefu_entry_id": {"type": "text", "mappings": [{"type": "custom"}]},
              "kefu_confidence": {"type": "float", "mappings": [{"type": "custom"}]}},
    "responses": {"utter_greet": [{"text": "Hi!"}]},
    "actions": ["action_kefu_answer", "action_kefu_handoff", "action_kefu_handoff_status"], "forms": {},
    "e2e_actions": [],
}


def rasa_call(action: str, text: str, sender: str = "rasa-user-1", history: list[dict[str, Any]] | None = None,
              slots: dict[str, Any] | None = None, intent: str = "ask_faq") -> dict[str, Any]:
    """The JSON body Rasa (3.x) POSTs to an action server's /webhook."""
    now = time.time()
    parse = {"text": text, "intent": {"name": intent, "confidence": 0.91}, "entities": [],
             "intent_ranking": [{"name": intent, "confidence": 0.91}], "message_id": "abc"}
    events = [ActionExecuted("action_session_start", timestamp=now - 60), SessionStarted(timestamp=now - 60),
              ActionExecuted("action_listen", timestamp=now - 60), *(history or []),
              UserUttered(text, parse, timestamp=now, input_channel="rest")]
    return {
        "next_action": action,
        "sender_id": sender,
        "tracker": {
            "sender_id": sender, "slots": {"kefu_entry_id": None, "kefu_confidence": None, **(slots or {})},
            "latest_message": parse, "latest_event_time": now, "followup_action": None, "paused": False,
            "events": events, "latest_input_channel": "rest", "active_loop": {},
            "latest_action": {"action_name": "action_listen"}, "latest_action_name": "action_listen",
        },
        "domain": DOMAIN,
        "version": "3.11.0",
    }


def slots_of(body: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e["value"] for e in body["events"] if e["event"] == "slot"}


@pytest.fixture
def order_api(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    with in_thread(order_api_app()) as url:
        monkeypatch.setenv("ORDER_API_URL", url)
        yield url


@pytest.fixture
async def server(config: Config, redis_client: aioredis.Redis, order_api: str
                 ) -> AsyncIterator[tuple[httpx.AsyncClient, Runtime]]:
    cfg = dataclasses.replace(config, actions=ActionsConfig(module="examples.order_status.actions"))
    runtime = await Runtime.start(cfg, redis=redis_client, kb=load_kb(EXAMPLE / "knowledge.yaml"))

    async def factory(_: Config) -> Runtime:
        return runtime

    async with in_loop(create_actions_app(cfg, factory)) as url, httpx.AsyncClient(base_url=url) as client:
        yield client, runtime


async def test_health_and_action_list(server: tuple[httpx.AsyncClient, Runtime]) -> None:
    client, _ = server
    assert (await client.get("/health")).json() == {"status": "ok"}
    names = {item["name"] for item in (await client.get("/actions")).json()}
    assert names == {"action_kefu_answer", "action_kefu_handoff", "action_kefu_handoff_status", "action_order_status"}


async def test_answer_from_the_knowledge_base_sets_entry_and_confidence(server: tuple[httpx.AsyncClient, Runtime]
                                                                        ) -> None:
    client, runtime = server
    response = await client.post("/webhook", json=rasa_call("action_kefu_answer", "怎么退货"))
    assert response.status_code == 200
    body = response.json()
    entry = runtime.knowledge.kb.get("return-policy")
    assert entry is not None
    assert [r["text"] for r in body["responses"]] == [entry.answer["zh"]]
    slots = slots_of(body)
    assert slots["kefu_entry_id"] == "return-policy" and slots["kefu_decision"] == "answer"
    assert 0 < slots["kefu_confidence"] <= 1 and slots["kefu_language"] == "zh"

    english = (await client.post("/webhook", json=rasa_call("action_kefu_answer", "What payment methods do you accept?",
                                                            sender="rasa-user-2"))).json()
    assert english["responses"][0]["text"] == "We accept WeChat Pay, Alipay and bank cards."


async def test_business_action_entry_runs_the_order_lookup(server: tuple[httpx.AsyncClient, Runtime]) -> None:
    client, _ = server
    body = (await client.post("/webhook", json=rasa_call("action_kefu_answer", "我的订单 A123456 到哪了"))).json()
    assert "SF1234567890" in body["responses"][0]["text"]
    assert slots_of(body)["kefu_entry_id"] == "order-status"


async def test_complaint_is_never_answered_but_handed_off_with_the_rasa_transcript(
        server: tuple[httpx.AsyncClient, Runtime]) -> None:
    client, runtime = server
    history = [UserUttered("你好", {"text": "你好", "intent": {"name": "greet", "confidence": 0.99}},
                           timestamp=time.time() - 30),
               BotUttered("您好，请问有什么可以帮您？", timestamp=time.time() - 29),
               ActionExecuted("action_listen", timestamp=time.time() - 29)]
    complaint = "你们就是骗子，我要投诉到12315"
    answer = (await client.post("/webhook", json=rasa_call("action_kefu_answer", complaint, history=history,
                                                           intent="complain"))).json()
    assert answer["responses"] == []  # no FAQ paragraph for a complaint
    assert {"event": "followup", "name": "action_kefu_handoff", "timestamp": None} in answer["events"]
    assert slots_of(answer)["kefu_handoff_reason"] == "complaint"

    handoff_call = rasa_call("action_kefu_handoff", complaint, history=history,
                             slots={"kefu_handoff_reason": "complaint"})
    handed = (await client.post("/webhook", json=handoff_call)).json()
    text = handed["responses"][0]["text"]
    assert "抱歉" in text and "人工客服" in text
    assert slots_of(handed)["kefu_handoff_state"] == "waiting"

    stored = await runtime.store.load_conversation("rasa:rasa-user-1")
    assert stored is not None and stored.state is ConversationState.WAITING
    assert stored.handoff is not None and stored.handoff.reason == "complaint"
    customer = [line.text for line in stored.transcript if line.role is Role.CUSTOMER]
    assert customer[0] == "你好" and customer[-1] == complaint  # the agent sees what was said in Rasa
    assert "您好，请问有什么可以帮您？" in [line.text for line in stored.transcript if line.role is Role.BOT]

    again = (await client.post("/webhook", json=handoff_call)).json()  # no second ticket
    assert "队列" in again["responses"][0]["text"]
    status = (await client.post("/webhook", json=rasa_call("action_kefu_handoff_status", "人工客服什么时候来"))).json()
    assert "队列" in status["responses"][0]["text"] and slots_of(status)["kefu_handoff_state"] == "waiting"


async def test_handoff_status_without_a_handoff_in_english(server: tuple[httpx.AsyncClient, Runtime]) -> None:
    client, _ = server
    body = (await client.post("/webhook", json=rasa_call("action_kefu_handoff_status", "is an agent coming?",
                                                         sender="nobody"))).json()
    assert body["responses"][0]["text"].startswith("There's no open request for an agent")
    assert slots_of(body)["kefu_handoff_state"] == "none"


async def test_clarify_offers_buttons_and_remembers_them_between_rasa_turns(
        server: tuple[httpx.AsyncClient, Runtime]) -> None:
    client, runtime = server
    # Force a clarify as the intent layer would, through Kefu's own record of the conversation.
    conv = await runtime.store.load_conversation("rasa:picker")
    assert conv is None
    from bot.types import Conversation

    await runtime.store.save_conversation(Conversation("rasa:picker", "rasa", "picker", "picker",
                                                       pending_suggestions=("return-policy", "payment-methods")))
    body = (await client.post("/webhook", json=rasa_call("action_kefu_answer", "2", sender="picker"))).json()
    assert body["responses"][0]["text"] == "支持微信支付、支付宝和银行卡支付。"


async def test_protocol_errors_match_rasa_sdk(server: tuple[httpx.AsyncClient, Runtime]) -> None:
    client, _ = server
    missing = await client.post("/webhook", json=rasa_call("action_does_not_exist", "hi"))
    assert missing.status_code == 404 and missing.json()["action_name"] == "action_does_not_exist"
    no_domain = rasa_call("action_kefu_answer", "hi")
    del no_domain["domain"]
    assert (await client.post("/webhook", json=no_domain)).status_code == 449
    assert (await client.post("/webhook", content=b"not json")).status_code == 400


async def test_a_failing_business_action_is_a_500_for_rasa(server: tuple[httpx.AsyncClient, Runtime],
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """Called directly by Rasa, a broken action answers like rasa-sdk does (Rasa then runs its fallback)."""
    client, _ = server
    monkeypatch.setenv("ORDER_API_URL", f"http://127.0.0.1:{free_port()}")
    response = await client.post("/webhook", json=rasa_call("action_order_status", "A123456"))
    assert response.status_code == 500 and "action_order_status" in response.text


def test_kefu_actions_command_serves_the_action_server(tmp_path: Path, cache_dir: Path) -> None:
    port = free_port()
    config = tmp_path / "kefu.yaml"
    config.write_text(f"knowledge:\n  path: {EXAMPLE / 'knowledge.yaml'}\n  cache_dir: {cache_dir}\n"
                      "intents:\n  embeddings: false\nactions:\n  module: examples.order_status.actions\n",
                      encoding="utf-8")
    log = (tmp_path / "actions.log").open("w")
    proc = subprocess.Popen([sys.executable, "-m", "bot", "--config", str(config), "actions", "--port", str(port)],
                            cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, (tmp_path / "actions.log").read_text()
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "kefu actions did not come up"
            time.sleep(0.2)
        names = {a["name"] for a in httpx.get(f"http://127.0.0.1:{port}/actions").json()}
        assert "action_kefu_answer" in names and "action_order_status" in names
        body = httpx.post(f"http://127.0.0.1:{port}/webhook", json=rasa_call("action_kefu_answer", "怎么退货")).json()
        assert "7天" in body["responses"][0]["text"]
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_kefu_core_runs_without_rasa_sdk() -> None:
    """rasa-sdk is an optional extra: the core imports, and `kefu actions` says how to install it."""
    code = ("import sys; sys.modules['rasa_sdk'] = None\n"
            "import bot.runtime, bot.server, handlers.actions.act, intents.rasa_backend\n"
            "from bot.cli import run\n"
            "sys.exit(run(['actions']))\n")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2, result.stderr
    assert "pip install 'kefu[rasa]'" in result.stderr and "Traceback" not in result.stderr


def test_intents_config_for_rasa_parses(config: Config) -> None:
    from bot.config import parse_config

    parsed = parse_config({"intents": {"backend": "rasa", "rasa": {"url": "http://127.0.0.1:5005", "token": "t",
                                                                   "timeout_seconds": 1.5,
                                                                   "intent_map": {"ask_refund": "refund-time"}}},
                           "actions": {"module": "m", "server_url": "", "timeout_seconds": 3}})
    assert parsed.intents.rasa.intent_map == {"ask_refund": "refund-time"}
    assert parsed.actions.timeout_seconds == 3.0
    assert isinstance(parsed.intents, IntentsConfig)
