"""Smalltalk is recognised only when the whole message is smalltalk; a real question goes to the FAQ."""

from __future__ import annotations

import pytest

from intents.escalation import detect_escalation
from intents.smalltalk import Smalltalk, detect_smalltalk

GREETINGS = ["你好", "您好！", "在吗", "在吗在吗？", "亲，在吗", "客服在吗", "有人吗", "哈喽～", "嗨", "早上好", "晚上好呀",
             "你們好", "hi", "Hi!!!", "hello there", "HELLO", "hey there", "good morning", "Good evening!", "hiii",
             "hey, anyone there?", "how are you?", "what's up", "👋", "你好 hello"]
THANKS = ["谢谢", "謝謝", "谢谢你！", "多谢啦", "非常感谢", "太感谢了！！", "辛苦了", "好的", "好的谢谢", "ok", "OK👌", "嗯嗯",
          "明白了", "收到", "thanks", "thanks a lot!", "thank you so much 🙏", "Thank you very much!", "thx", "ty",
          "much appreciated", "got it, thanks", "👍", "👍👍", "cool thanks", "perfect"]
GOODBYES = ["再见", "拜拜", "88", "好的，再见", "谢谢，拜拜", "没有了，谢谢", "晚安", "bye", "Bye-bye!", "goodbye", "see you",
            "thanks, bye", "ok thanks bye", "have a nice day", "that's all, thanks", "no thanks"]
IDENTITY = ["你是机器人吗", "你是不是机器人？", "你是真人吗", "是人工吗", "你是谁", "你是機器人嗎", "are you a bot?",
            "Are you a real person?", "is this a real person", "am I talking to a bot", "is this automated?",
            "hi, are you a bot?", "you are a bot?", "who am i talking to", "你好，你是机器人吗"]
NOT_SMALLTALK = [
    "你好，怎么退货", "您好，请问运费多少", "在吗？我要退货", "在吗 我的快递到哪了", "谢谢，但是我的订单还没到", "好的，那怎么退款",
    "hi I want a refund", "hello, where is my order", "thanks, but where is my order", "thanks but the coupon doesn't work",
    "hi there, can I change my address", "good morning, I was charged twice", "ok so how do I return it", "退货", "运费多少",
    "转人工", "人工客服", "我要投诉", "你好垃圾", "hi human please", "hire", "thanksgiving sale", "bye bye to my money",
    "how are you going to fix this", "好的差评", "1", "???", "", "   ", "👎", "你是谁家的快递", "are you open on sundays",
    "is this a real leather jacket", "whats up with my order",
]


@pytest.mark.parametrize(
    ("text", "expected"),
    [(t, Smalltalk.GREETING) for t in GREETINGS] + [(t, Smalltalk.THANKS) for t in THANKS]
    + [(t, Smalltalk.GOODBYE) for t in GOODBYES] + [(t, Smalltalk.BOT_IDENTITY) for t in IDENTITY],
)
def test_smalltalk(text: str, expected: Smalltalk) -> None:
    assert detect_smalltalk(text) is expected


@pytest.mark.parametrize("text", NOT_SMALLTALK)
def test_not_smalltalk(text: str) -> None:
    assert detect_smalltalk(text) is None


@pytest.mark.parametrize("text", GREETINGS + THANKS + GOODBYES + IDENTITY)
def test_smalltalk_never_escalates(text: str) -> None:
    """The layer checks escalation first, so smalltalk must not look like a complaint or a human request."""
    assert detect_escalation(text) is None


def test_values_are_stable_codes() -> None:
    assert [s.value for s in Smalltalk] == ["greeting", "thanks", "goodbye", "bot_identity", "help", "off_topic"]


@pytest.mark.parametrize("text", ["help", "Help!", "what can you do?", "帮助", "帮帮我", "你能做什么", "菜单"])
def test_help_asks_what_the_bot_can_do(text: str) -> None:
    assert detect_smalltalk(text) is Smalltalk.HELP


@pytest.mark.parametrize("text", ["help me track my order", "帮我查一下订单", "can you help me with a refund"])
def test_help_with_a_question_is_not_smalltalk(text: str) -> None:
    assert detect_smalltalk(text) is None


@pytest.mark.parametrize("text", ["great service, thanks a lot!", "wow that was fast, thank you", "服务很好，谢谢",
                                  "谢谢，回复得真快，点赞"])
def test_praise_is_thanks(text: str) -> None:
    assert detect_smalltalk(text) == Smalltalk.THANKS


@pytest.mark.parametrize("text", ["great service, thanks for nothing", "wow, amazing service, third time it's wrong"])
def test_praise_around_a_failure_is_not_smalltalk(text: str) -> None:
    assert detect_smalltalk(text) is None
