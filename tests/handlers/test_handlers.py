"""Handlers are pure: a decision and a conversation in, replies and new state out."""

from __future__ import annotations

import pytest

from bot.config import HandoffConfig
from bot.types import Action, Candidate, Conversation, Decision, InboundMessage, Intent, Reason
from handlers import respond
from knowledge.schema import parse_kb

KB = parse_kb("""
- id: refund-time
  questions: [退款多久到账, "How long does a refund take?"]
  answer: {zh: 一个工作日内退款。, en: Refunds are issued within one business day.}
- id: refund-missing
  questions: [退款还没收到, I haven't received my refund]
  answer: {zh: 请先核对支付账户。, en: Please check the original payment account first.}
""")
CONV = Conversation.start(InboundMessage("web", "u", "c", "x", "m"))
CONFIG = HandoffConfig(expected_wait_minutes=7)


def test_answer_in_customer_language_resets_failures() -> None:
    outcome = respond(Decision(Action.ANSWER, "en", Intent.FAQ, 0.9, entry_id="refund-time"),
                      CONV.evolve(failures=1, pending_suggestions=("a",)), KB, CONFIG)
    assert [r.text for r in outcome.replies] == ["Refunds are issued within one business day."]
    assert outcome.conversation.failures == 0 and outcome.conversation.pending_suggestions == ()
    assert outcome.handoff is None


def test_clarify_offers_numbered_buttons_and_remembers_them() -> None:
    decision = Decision(Action.CLARIFY, "zh", Intent.FAQ, 0.5, suggestions=("refund-time", "refund-missing"))
    outcome = respond(decision, CONV, KB, CONFIG)
    reply = outcome.replies[0]
    assert reply.text.splitlines() == ["您是想问以下哪个问题？回复序号或点击选项即可：", "1. 退款多久到账", "2. 退款还没收到"]
    assert [(s.label, s.payload) for s in reply.suggestions] == [("退款多久到账", "refund-time"),
                                                                  ("退款还没收到", "refund-missing")]
    assert outcome.conversation.pending_suggestions == ("refund-time", "refund-missing")
    assert outcome.conversation.failures == 1

    english = respond(Decision(Action.CLARIFY, "en", Intent.FAQ, 0.5, suggestions=("refund-time",)), CONV, KB, CONFIG)
    assert english.replies[0].suggestions[0].label == "How long does a refund take?"


@pytest.mark.parametrize(
    ("reason", "language", "must_contain"),
    [
        ("complaint", "zh", ["抱歉", "理解", "人工客服", "7分钟"]),
        ("complaint", "en", ["sorry", "understand", "human agent", "7 minutes"]),
        ("human_request", "zh", ["人工客服", "7分钟", "不用重复"]),
        ("low_confidence", "en", ["human", "7 minutes"]),
        ("repeated_failure", "zh", ["抱歉", "人工客服"]),
    ],
)
def test_handoff_wording(reason: str, language: str, must_contain: list[str]) -> None:
    candidates = (Candidate("refund-time", 0.41, "退款多久到账"),)
    outcome = respond(Decision(Action.HANDOFF, language, Intent.HANDOFF, 1.0, reason=Reason(reason), detail="d",
                               candidates=candidates), CONV, KB, CONFIG)
    text = outcome.replies[0].text
    for fragment in must_contain:
        assert fragment in text
    for never in ("你搞错了", "不是我们的政策", "不可能", "must have made a mistake", "not our policy", "impossible"):
        assert never not in text
    assert outcome.handoff is not None
    assert outcome.handoff.reason == reason and outcome.handoff.candidates == candidates


def test_answer_for_deleted_entry_hands_off_instead_of_failing() -> None:
    outcome = respond(Decision(Action.ANSWER, "zh", Intent.FAQ, 0.9, entry_id="gone"), CONV, KB, CONFIG)
    assert outcome.handoff is not None


@pytest.mark.parametrize(("intent", "language", "start"), [("greeting", "zh", "您好"), ("thanks", "en", "You're welcome"),
                                                          ("goodbye", "zh", "感谢"), ("bot_identity", "en", "I'm a virtual")])
def test_smalltalk(intent: str, language: str, start: str) -> None:
    outcome = respond(Decision(Action.SMALLTALK, language, Intent(intent), 1.0), CONV, KB, CONFIG)
    assert outcome.replies[0].text.startswith(start)
    assert outcome.handoff is None
