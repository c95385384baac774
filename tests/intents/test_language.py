"""Language detection: Chinese or English, and the conversation's language when a message has no letters."""

from __future__ import annotations

import pytest

from intents.language import detect_language, normalize, normalize_with_offsets


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("退货怎么操作", "zh"), ("您好！", "zh"), ("轉人工", "zh"), ("我的order怎么还没到", "zh"), ("iPhone 15怎么退货", "zh"),
        ("OK谢谢", "zh"), ("退款refund", "zh"), ("这个app登录不上", "zh"), ("ｈｉ你好", "zh"),
        ("how do returns work", "en"), ("HUMAN PLEASE!!!", "en"), ("Human please!!!", "en"), ("my 快递 is late", "en"),
        ("can i pay with alipay", "en"), ("café refund?", "en"), ("ＨＥＬＬＯ", "en"),
    ],
)
def test_detects_language(text: str, expected: str) -> None:
    assert detect_language(text, default="zh") == expected
    assert detect_language(text, default="en") == expected


@pytest.mark.parametrize("text", ["1", "2.", "👍", "???", "！！！", "", "   ", "12345678", "ok", "OK", "haha", "emm", "🙏🙏"])
def test_no_letters_keeps_the_conversation_language(text: str) -> None:
    assert detect_language(text, default="zh") == "zh"
    assert detect_language(text, default="en") == "en"


def test_default_is_chinese() -> None:
    assert detect_language("1") == "zh"


@pytest.mark.parametrize(
    ("text", "expected"),
    [("轉人工！！", "转人工!!"), ("ＨＥＬＬＯ　ｗｏｒｌｄ？", "hello world?"), ("  你們  甚麼  ", "你们 什么"),
     ("投訴經理", "投诉经理"), ("騙子", "骗子"), ("Thanks\n\nBye", "thanks bye")],
)
def test_normalize(text: str, expected: str) -> None:
    assert normalize(text) == expected


def test_offsets_point_back_into_the_original() -> None:
    original = "  我要去１２３１５投訴！ "
    normalized, offsets = normalize_with_offsets(original)
    assert len(normalized) == len(offsets)
    start = normalized.index("12315")
    assert original[offsets[start]: offsets[start + 4] + 1] == "１２３１５"
