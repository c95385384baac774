"""Reading a customer's reply to the satisfaction survey."""

from __future__ import annotations

import pytest

from bot.agents.survey import ask, is_no_comment, parse_rating


@pytest.mark.parametrize(("text", "rating"), [
    ("5", 5), (" 4 ", 4), ("３", 3), ("五星", 5), ("4分", 4), ("2 stars", 2), ("1/5", 1), ("非常满意", 5),
    ("满意", 4), ("一般", 3), ("Very dissatisfied", 1), ("5!", 5),
])
def test_ratings_in_the_ways_customers_write_them(text: str, rating: int) -> None:
    assert parse_rating(text) == rating


@pytest.mark.parametrize("text", ["6", "0", "怎么退货", "15", "5 items were missing", ""])
def test_anything_else_is_not_a_rating(text: str) -> None:
    assert parse_rating(text) is None


def test_survey_offers_one_to_five_and_no_comment_is_recognised() -> None:
    reply = ask("en")
    assert [s.payload for s in reply.suggestions] == ["1", "2", "3", "4", "5"]
    assert "1" in reply.text and "5" in reply.text
    assert is_no_comment("没有") and is_no_comment("No comment.") and not is_no_comment("客服很耐心")
