"""Verdicts on the bot's answers: which question a verdict names, the one-line refusals of turns a
conversation does not have, and one record per answer and judge on the admin review list."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis

from bot.config import StoreConfig
from bot.errors import InvalidInput, NotFound
from bot.review import AGENT, CUSTOMER, AnswerReview, answered_question, answers
from bot.storage.conversations import Store
from bot.types import Conversation, InboundMessage, Role, TranscriptLine

AT = 1_700_000_000.0


def line(role: Role, text: str, seq: int, **meta: object) -> TranscriptLine:
    return TranscriptLine(role, text, AT + seq, dict(meta), seq)


def answer(entry: str) -> dict[str, object]:
    return {"action": "answer", "entry_id": entry, "confidence": 0.91}


def conversation() -> Conversation:
    """Hello (smalltalk), an answer, a clarify, another answer, then an agent's reply."""
    start = Conversation.start(InboundMessage("web", "u1", "s1", "", "", AT))
    return start.with_lines([
        line(Role.CUSTOMER, "你好", 1, message_id="m1", decision={"action": "smalltalk"}),
        line(Role.BOT, "您好", 2),
        line(Role.CUSTOMER, "退款多久到账", 3, message_id="m3", decision=answer("refund-time")),
        line(Role.BOT, "1-3 个工作日", 4),
        line(Role.CUSTOMER, "发票", 5, message_id="m5", decision={"action": "clarify"}),
        line(Role.BOT, "您是想问", 6),
        line(Role.CUSTOMER, "怎么退货", 7, message_id="m7", decision=answer("return-policy")),
        line(Role.BOT, "七天无理由", 8),
        line(Role.AGENT, "您好我是小李", 9),
    ])


def test_the_answers_are_the_bot_lines_right_after_an_answered_question() -> None:
    assert answers(conversation().transcript) == {4: "refund-time", 8: "return-policy"}


def test_a_verdict_names_a_bot_line_a_customer_message_or_the_latest_answer() -> None:
    conv = conversation()
    assert answered_question(conv, seq=4).text == "退款多久到账"
    assert answered_question(conv, message_id="m7").text == "怎么退货"
    assert answered_question(conv).text == "怎么退货"


@pytest.mark.parametrize(("where", "error", "words"), [
    ({"seq": 99}, NotFound, "has no message #99"),
    ({"seq": 6}, InvalidInput, "message #6 is not an answer of the bot"),  # a clarify
    ({"seq": 9}, InvalidInput, "is not an answer"),  # the agent's reply
    ({"seq": 3}, InvalidInput, "is not an answer"),  # the customer's own line
    ({"message_id": "nope"}, NotFound, "has no message 'nope'"),
    ({"message_id": "m1"}, InvalidInput, "was not answered by the bot"),
])
def test_a_turn_the_conversation_lacks_is_a_one_line_refusal(where: dict[str, object], error: type[Exception],
                                                             words: str) -> None:
    with pytest.raises(error, match=words) as raised:
        answered_question(conversation(), **where)  # type: ignore[arg-type]
    assert "\n" not in str(raised.value)


def test_a_conversation_without_answers_has_nothing_to_rate() -> None:
    empty = Conversation.start(InboundMessage("web", "u1", "s1", "", "", AT))
    with pytest.raises(NotFound, match="no answer to rate yet"):
        answered_question(empty)


async def test_a_bad_verdict_goes_on_the_review_list_once_per_judge(redis_client: aioredis.Redis) -> None:
    store = Store(redis_client, StoreConfig())
    review = AnswerReview(store, clock=lambda: AT + 100)
    conv = conversation()
    assert await review.judge(conv, False, seq=4) is True
    assert await review.judge(conv, False, seq=4) is False  # a double tap
    assert await review.judge(conv, False, reason=AGENT, seq=4) is True  # the agent judges too
    assert await review.judge(conv, True, message_id="m7") is True
    rows = await store.records.unanswered()
    assert [(r["text"], r["reason"], r["entry_id"], r["confidence"]) for r in rows] == [
        ("退款多久到账", CUSTOMER, "refund-time", 0.91), ("退款多久到账", AGENT, "refund-time", 0.91)]
    [day] = await store.records.daily_counters(["2023-11-14"])
    assert day == {"unanswered": 2, "thumbs_down": 1, "agent_wrong": 1, "thumbs_up": 1}
    with pytest.raises(NotFound, match="no such conversation"):
        await review.judge(None, False)
