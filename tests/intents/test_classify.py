"""The classify step: one order (text-less → pick → escalation → readers) for every backend, pure."""

from __future__ import annotations

import dataclasses
import socket
from typing import Any

import pytest

from bot.config import Config, IntentsConfig
from bot.runtime import build_intent_layer
from bot.types import Action, Choice, Conversation, Decision, InboundMessage, Intent, Reason
from intents.classify import Classifier
from knowledge.schema import parse_kb

CONV = Conversation.start(InboundMessage("web", "u", "c", "x", "m"))
OFFERED = dataclasses.replace(CONV, pending_suggestions=("fee-domestic", "fee-overseas"))


class Recording:
    """A reader that records what it was asked; ``answer`` None passes to the next reader."""

    def __init__(self, answer: Decision | None, quick: bool = True) -> None:
        self.answer = answer
        self.quick = quick
        self.texts: list[str] = []

    def is_quick(self, text: str) -> bool:
        return self.quick

    def understand(self, text: str, language: str, conversation: Conversation) -> Decision | None:
        self.texts.append(text)
        return self.answer


LAST = Decision(Action.ANSWER, "zh", Intent.FAQ, 0.9, entry_id="refund-time")


class Final(Recording):
    def understand(self, text: str, language: str, conversation: Conversation) -> Decision:
        self.texts.append(text)
        return LAST


def test_a_pressed_choice_on_offer_answers_its_entry_without_any_reader() -> None:
    first, last = Recording(None), Final(None)
    decision = Classifier(last, (first,)).decide("海外运费怎么算", OFFERED, Choice("fee-overseas", "海外运费怎么算"))
    assert (decision.action, decision.entry_id, decision.reason) == (Action.ANSWER, "fee-overseas",
                                                                    Reason.CLARIFY_CHOICE)
    assert first.texts == [] and last.texts == []


def test_a_typed_pick_is_the_same_rule_and_a_stale_choice_is_read_as_its_words() -> None:
    last = Final(None)
    typed = Classifier(last).decide("第二个", OFFERED)
    assert (typed.entry_id, typed.reason) == ("fee-overseas", Reason.CLARIFY_CHOICE)
    stale = Classifier(last).decide("退款多久到账", CONV, Choice("refund-time", "退款多久到账"))
    assert stale is LAST and last.texts == ["退款多久到账"]  # no longer on offer: the label is the question


def test_escalation_wins_over_every_reader_and_text_less_messages_are_not_read() -> None:
    first, last = Recording(LAST), Final(None)
    classifier = Classifier(last, (first,))
    complaint = classifier.decide("你们是骗子，我要投诉", CONV)
    assert (complaint.action, complaint.reason) == (Action.HANDOFF, Reason.COMPLAINT)
    photo = classifier.decide("", CONV)
    assert (photo.action, photo.intent) == (Action.SMALLTALK, Intent.ATTACHMENT)
    assert first.texts == [] and last.texts == []


def test_readers_in_order_the_first_may_pass_and_quick_only_if_all_are() -> None:
    passing, last = Recording(None, quick=False), Final(None)
    classifier = Classifier(last, (passing,))
    assert classifier.decide("运费", CONV) is LAST and passing.texts == last.texts == ["运费"]
    assert not classifier.is_quick("运费", CONV) and Classifier(last).is_quick("运费", CONV)


def test_kefus_classifier_is_pure_it_opens_no_socket(config: Config, monkeypatch: pytest.MonkeyPatch) -> None:
    kb = parse_kb("""
- id: refund-time
  questions: [退款多久到账, "How long does a refund take?"]
  answer: {zh: 一个工作日内退款。, en: Refunds are issued within one business day.}
- id: track-order
  questions: [我的快递到哪了, "Where is my parcel?"]
  answer: {zh: 在“我的订单”里可以看到物流信息。, en: Open "My Orders" to see the tracking.}
""")
    layer = build_intent_layer(kb, dataclasses.replace(config, intents=IntentsConfig(embeddings=False)))

    def no_io(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the classify step opened a socket")

    monkeypatch.setattr(socket.socket, "connect", no_io)
    monkeypatch.setattr(socket, "create_connection", no_io)
    decisions = [layer.decide(text, CONV) for text in ("退款多久到账", "你好", "我要投诉你们，太差劲了", "")]
    assert [d.action for d in decisions] == [Action.ANSWER, Action.SMALLTALK, Action.HANDOFF, Action.SMALLTALK]
    assert decisions[0].action_run is None  # actions are the act step's, never classification's
