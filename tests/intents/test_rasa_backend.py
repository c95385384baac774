"""A Rasa server as the NLU: a stand-in Rasa HTTP server on loopback (fast, slow, 500, down).

The layer's own HTTP client is the real httpx one talking to a real uvicorn; only the Rasa model
is replaced by a table of texts → intents.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import logging
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from bot.config import Config, IntentsConfig, RasaConfig, ThresholdConfig
from bot.errors import ConfigError
from bot.runtime import Runtime
from bot.types import Action, Conversation, Decision, InboundMessage, Intent, Reason
from intents.classify import Classifier
from intents.rasa_backend import RasaReader, build_rasa_layer
from knowledge.schema import parse_kb
from tests.bot.rasa.loopback import free_port, in_thread

KB = parse_kb("""
- id: track-order
  questions: [我的快递到哪了, "Where is my parcel?"]
  answer: {zh: 在“我的订单”里可以看到物流信息。, en: Open "My Orders" to see the tracking.}
- id: refund-time
  questions: [退款多久到账, "How long does a refund take?"]
  answer: {zh: 一个工作日内退款。, en: Refunds are issued within one business day.}
""")
CONV = Conversation.start(InboundMessage("web", "u", "c", "x", "m"))
TOKEN = "s3cret"

# text → (intent, confidence, runner-up intent, its confidence)
MODEL: dict[str, tuple[str, float, str, float]] = {
    "where's my stuff": ("track_order", 0.93, "refund_time", 0.04),
    "我的钱呢": ("ask_refund", 0.88, "track_order", 0.05),
    "hey there": ("greet", 0.97, "goodbye", 0.01),
    "press zero": ("human_handoff", 0.91, "greet", 0.02),
    "mumble": ("track_order", 0.41, "refund_time", 0.39),
    "which one": ("track_order", 0.72, "refund_time", 0.68),
    "weather?": ("out_of_scope", 0.95, "greet", 0.01),
    "你们是骗子，我要投诉": ("track_order", 0.99, "greet", 0.0),
}


class StandInRasa:
    """``POST /model/parse`` like ``rasa run --enable-api --auth-token``; ``mode`` breaks it on demand."""

    def __init__(self) -> None:
        self.mode = "fast"
        self.requests: list[dict[str, Any]] = []

    def app(self) -> Starlette:
        async def parse(request: Request) -> JSONResponse:
            if request.query_params.get("token") != TOKEN:
                return JSONResponse({"status": "failure", "reason": "NotAuthenticated"}, status_code=401)
            body = await request.json()
            self.requests.append(body)
            if self.mode == "slow":
                await asyncio.sleep(1.5)
            if self.mode == "500":
                return JSONResponse({"status": "failure", "reason": "ParsingError"}, status_code=500)
            intent, confidence, other, other_conf = MODEL.get(body["text"], ("nlu_fallback", 0.3, "greet", 0.1))
            ranking = [{"name": intent, "confidence": confidence}, {"name": other, "confidence": other_conf}]
            return JSONResponse({"text": body["text"], "intent": ranking[0], "entities": [],
                                 "intent_ranking": ranking, "response_selector": {}})

        return Starlette(routes=[Route("/model/parse", parse, methods=["POST"])])


class KefuLayerStandIn:
    """Kefu's own reader as seen after the Rasa reader: records what it was asked to decide."""

    def __init__(self) -> None:
        self.texts: list[str] = []

    def is_quick(self, text: str) -> bool:
        return True

    def understand(self, text: str, language: str, conversation: Conversation) -> Decision:
        self.texts.append(text)
        return Decision(Action.HANDOFF, "zh", Intent.OUT_OF_SCOPE, 0.1, reason=Reason.LOW_CONFIDENCE)


@pytest.fixture(scope="module")
def rasa() -> Iterator[tuple[StandInRasa, str]]:
    stand_in = StandInRasa()
    with in_thread(stand_in.app()) as url:
        yield stand_in, url


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client() as c:
        yield c


def rasa_reader(classifier: Classifier) -> RasaReader:
    reader = classifier.first[0]
    assert isinstance(reader, RasaReader)
    return reader


def layer(base: str, client: httpx.Client, fallback: KefuLayerStandIn, **changes: Any) -> Classifier:
    config = dataclasses.replace(RasaConfig(url=base, token=TOKEN, timeout_seconds=0.5,
                                            intent_map={"ask_refund": "refund-time"}), **changes)
    return build_rasa_layer(fallback, KB, config, ThresholdConfig(), client)


def test_confident_intent_named_like_an_entry_answers_it(rasa: tuple[StandInRasa, str], client: httpx.Client) -> None:
    stand_in, url = rasa
    stand_in.mode = "fast"
    fallback = KefuLayerStandIn()
    decision = layer(url, client, fallback).decide("where's my stuff", CONV)
    assert (decision.action, decision.entry_id, decision.reason) == (Action.ANSWER, "track-order", "rasa")
    assert decision.confidence == pytest.approx(0.93) and decision.language == "en"
    assert [c.entry_id for c in decision.candidates] == ["track-order", "refund-time"]
    assert stand_in.requests[-1]["text"] == "where's my stuff"
    assert fallback.texts == []


def test_intent_map_smalltalk_and_handoff(rasa: tuple[StandInRasa, str], client: httpx.Client) -> None:
    rasa[0].mode = "fast"
    rasa_layer = layer(rasa[1], client, KefuLayerStandIn())
    refund = rasa_layer.decide("我的钱呢", CONV)
    assert (refund.action, refund.entry_id, refund.language) == (Action.ANSWER, "refund-time", "zh")
    hello = rasa_layer.decide("hey there", CONV)
    assert (hello.action, hello.intent) == (Action.SMALLTALK, "greeting")
    human = rasa_layer.decide("press zero", CONV)
    assert (human.action, human.reason) == (Action.HANDOFF, "human_request")


@pytest.mark.parametrize("text", ["mumble", "which one", "weather?", "never seen this"])
def test_unsure_or_unmapped_intents_are_left_to_kefu(text: str, rasa: tuple[StandInRasa, str],
                                                     client: httpx.Client) -> None:
    rasa[0].mode = "fast"
    fallback = KefuLayerStandIn()
    decision = layer(rasa[1], client, fallback).decide(text, CONV)
    assert fallback.texts == [text] and decision.reason == "low_confidence"


def test_kefu_complaint_rules_win_over_the_model(rasa: tuple[StandInRasa, str], client: httpx.Client) -> None:
    rasa[0].mode = "fast"
    before = len(rasa[0].requests)
    fallback = KefuLayerStandIn()
    decision = layer(rasa[1], client, fallback).decide("你们是骗子，我要投诉", CONV)
    # Kefu's rules decided, before any reader: neither Rasa nor Kefu's reader was asked
    assert (decision.action, decision.reason) == (Action.HANDOFF, Reason.COMPLAINT)
    assert fallback.texts == [] and len(rasa[0].requests) == before


def test_clarify_choice_is_resolved_by_kefu(rasa: tuple[StandInRasa, str], client: httpx.Client) -> None:
    before = len(rasa[0].requests)
    fallback = KefuLayerStandIn()
    decision = layer(rasa[1], client, fallback).decide("2", CONV.evolve(pending_suggestions=("track-order",
                                                                                           "refund-time")))
    assert (decision.entry_id, decision.reason) == ("refund-time", Reason.CLARIFY_CHOICE)  # by Kefu's rules
    assert fallback.texts == [] and len(rasa[0].requests) == before


@pytest.mark.parametrize("mode", ["slow", "500", "down", "bad-token"])
def test_rasa_slow_failing_or_down_falls_back_to_kefu_and_logs(mode: str, rasa: tuple[StandInRasa, str],
                                                               client: httpx.Client,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    stand_in, url = rasa
    stand_in.mode = mode
    changes: dict[str, Any] = {}
    if mode == "down":
        changes["url"] = f"http://127.0.0.1:{free_port()}"
    if mode == "bad-token":
        changes["token"] = "wrong"
    fallback = KefuLayerStandIn()
    rasa_layer = layer(url, client, fallback, **changes)
    with caplog.at_level(logging.WARNING, logger="intents.rasa_backend"):
        decision = rasa_layer.decide("where's my stuff", CONV)
    assert fallback.texts == ["where's my stuff"] and decision.reason == "low_confidence"
    assert rasa_reader(rasa_layer).fallbacks == 1
    assert "Rasa NLU unavailable" in caplog.text
    expected = {"slow": "no answer within 0.5s", "500": "HTTP 500", "down": "ConnectError", "bad-token": "HTTP 401"}
    assert expected[mode] in caplog.text
    stand_in.mode = "fast"


def test_configuration_errors_are_clear() -> None:
    with pytest.raises(ConfigError, match=r"intents\.rasa\.url is required"):
        build_rasa_layer(KefuLayerStandIn(), KB, RasaConfig(), ThresholdConfig())
    with pytest.raises(ConfigError, match=r"'no-such-entry' is neither"):
        build_rasa_layer(KefuLayerStandIn(), KB, RasaConfig(url="http://x", intent_map={"a": "no-such-entry"}),
                         ThresholdConfig())


# --- through the engine: intents.backend: rasa -------------------------------------------------------

_ids = itertools.count()


@pytest.fixture
async def rasa_runtime(config: Config, redis_client: aioredis.Redis,
                       rasa: tuple[StandInRasa, str]) -> AsyncIterator[Runtime]:
    intents = IntentsConfig(backend="rasa", embeddings=False,
                            rasa=RasaConfig(url=rasa[1], token=TOKEN, timeout_seconds=0.5))
    yield await Runtime.start(dataclasses.replace(config, intents=intents), redis=redis_client, kb=KB)


async def test_engine_answers_from_rasa_and_from_kefu_when_rasa_is_down(rasa_runtime: Runtime,
                                                                        rasa: tuple[StandInRasa, str]) -> None:
    rasa[0].mode = "fast"
    result = await rasa_runtime.engine.handle(InboundMessage("web", "r1", "r1", "where's my stuff", f"r{next(_ids)}"))
    assert result.decision is not None and result.decision.reason == "rasa"
    assert result.replies[0].text == 'Open "My Orders" to see the tracking.'

    rasa[0].mode = "500"
    try:
        result = await rasa_runtime.engine.handle(InboundMessage("web", "r2", "r2", "退款多久到账", f"r{next(_ids)}"))
    finally:
        rasa[0].mode = "fast"
    assert result.decision is not None and result.decision.entry_id == "refund-time"
    assert result.decision.reason != "rasa"  # Kefu's own layer answered
    assert result.replies[0].text == "一个工作日内退款。"
