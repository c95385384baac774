"""The satisfaction survey after an agent resolves a conversation (service rule 8).

The survey is a message with the options 1..5 on the customer's own channel; the next message
is read as the rating if it is one (a digit, 五星, "非常满意"...), then one optional comment.
Anything that is not a rating goes to the bot as usual: the customer is never trapped.
"""

from __future__ import annotations

import re

from bot.types import Reply, Suggestion
from handlers.texts import say

_DIGITS = {"1": 1, "2": 2, "3": 3, "4": 4, "5": 5, "１": 1, "２": 2, "３": 3, "４": 4, "５": 5,
           "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5}
_RATING = re.compile(r"^\s*([1-5１-５一二两三四五])\s*(分|星|颗星|stars?|/\s*5)?\s*[。.!！]?\s*$", re.IGNORECASE)
_WORDS = {
    "非常满意": 5, "很满意": 5, "满意": 4, "一般": 3, "还行": 3, "不满意": 2, "很不满意": 1, "非常不满意": 1,
    "very satisfied": 5, "satisfied": 4, "ok": 3, "okay": 3, "neutral": 3, "unsatisfied": 2,
    "dissatisfied": 2, "very unsatisfied": 1, "very dissatisfied": 1,
}
_NO_COMMENT = {"没有", "没有了", "无", "不用了", "没", "no", "no comment", "nope", "none", "n/a", "skip"}


def parse_rating(text: str) -> int | None:
    match = _RATING.match(text)
    if match:
        return _DIGITS[match.group(1)]
    return _WORDS.get(text.strip().strip("。.!！").lower())


def is_no_comment(text: str) -> bool:
    return text.strip().strip("。.!！").lower() in _NO_COMMENT


def ask(language: str) -> Reply:
    options = tuple(Suggestion(str(n), str(n)) for n in range(1, 6))
    return Reply(say("survey_ask", language), options)


def ask_comment(language: str) -> Reply:
    skip = say("survey_no_comment", language)
    return Reply(say("survey_comment", language), (Suggestion(skip, skip),))
