from __future__ import annotations

import pytest

from intents.choice import resolve_choice

OPTIONS = ("refund-time", "refund-missing", "return-policy")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1", "refund-time"), ("１", "refund-time"), ("2", "refund-missing"), (" 3 ", "return-policy"),
        ("第一个", "refund-time"), ("第二个吧", "refund-missing"), ("选3", "return-policy"), ("第三条", "return-policy"),
        ("最后一个", "return-policy"), ("the first one", "refund-time"), ("Second", "refund-missing"),
        ("option 2", "refund-missing"), ("#3", "return-policy"), ("the last one", "return-policy"),
        ("I mean the second one", "refund-missing"), ("refund-missing", "refund-missing"), ("2.", "refund-missing"),
    ],
)
def test_picks(text: str, expected: str) -> None:
    assert resolve_choice(text, OPTIONS) == expected


@pytest.mark.parametrize("text", ["4", "第五个", "退款多久到账", "one more thing", "12", "我要退货"])
def test_not_a_pick(text: str) -> None:
    assert resolve_choice(text, OPTIONS) is None


def test_nothing_pending() -> None:
    assert resolve_choice("1", ()) is None
