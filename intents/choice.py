"""Resolve a follow-up to a clarify question: "1", "第二个", "the first one", or a button payload."""

from __future__ import annotations

import re
from collections.abc import Sequence

_ORDINALS = {
    "1": 0, "一": 0, "first": 0, "1st": 0, "one": 0,
    "2": 1, "二": 1, "两": 1, "second": 1, "2nd": 1, "two": 1,
    "3": 2, "三": 2, "third": 2, "3rd": 2, "three": 2,
    "4": 3, "四": 3, "fourth": 3, "4th": 3, "four": 3,
    "5": 4, "五": 4, "fifth": 4, "5th": 4, "five": 4,
}
_LAST = {"last", "最后", "最后一个", "最后那个"}
_FULLWIDTH = str.maketrans("０１２３４５６７８９", "0123456789")
_CHINESE = re.compile(r"^(?:选|选择|是|要|就)?第?([一二两三四五1-5])(?:个|条|项|种|号)?(?:吧|啊|呀|的|问题)?$")
_ENGLISH = re.compile(
    r"^(?:(?:option|number|no\.?|#)\s*)?(?:the\s+)?(1st|2nd|3rd|4th|5th|[1-5]|one|two|three|four|five|"
    r"first|second|third|fourth|fifth)(?:\s+(?:one|option|question))?(?:\s+please)?$"
)


def resolve_choice(text: str, options: Sequence[str]) -> str | None:
    """The option the customer picked, or None if ``text`` is not a pick.

    ``options`` are entry ids in the order they were offered; a button sends the id itself.
    """
    if not options:
        return None
    cleaned = text.strip().translate(_FULLWIDTH)
    if cleaned in options:
        return cleaned
    lowered = re.sub(r"[\s.,!?。，！？、:：]+$", "", cleaned.lower()).strip()
    lowered = re.sub(r"^(?:i\s+(?:mean|meant|want)|it'?s|我(?:想问|要问|问的是|是说)?)\s*", "", lowered)
    if lowered in _LAST or lowered in {"the last one", "last one"}:
        return options[-1]
    match = _CHINESE.match(lowered) or _ENGLISH.match(lowered)
    if not match:
        return None
    index = _ORDINALS.get(match.group(1))
    if index is None or index >= len(options):
        return None
    return options[index]
