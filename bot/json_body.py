"""The JSON object body of an API request, or a 400 that says what was expected.

A body is attacker-shaped until checked: nesting is bounded (a deeply nested array made the
parser raise ``RecursionError``, a 500) and every string must be valid Unicode (a lone
surrogate such as ``"\\ud800"`` parses, then fails when it is written to Redis or a log).
"""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request

from bot.errors import BadRequest

MAX_DEPTH = 32  # the deepest real body (a Telegram reply inside a callback) is under 10


def checked(value: Any) -> Any:
    """``value`` unchanged if it is nested at most :data:`MAX_DEPTH` deep and has no lone surrogates."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            _unicode(item)
        elif isinstance(item, dict | list):
            if depth > MAX_DEPTH:
                raise BadRequest(f"JSON is nested more than {MAX_DEPTH} levels deep")
            if isinstance(item, dict):
                for key in item:
                    _unicode(key)
            stack.extend((child, depth + 1) for child in (item.values() if isinstance(item, dict) else item))
    return value


def _unicode(text: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise BadRequest("text must be valid Unicode (a lone surrogate such as \\ud800 is not)") from None


def parse_json(raw: bytes) -> Any:
    """Parse and :func:`checked` a request body; 400 naming the problem otherwise."""
    try:
        return checked(json.loads(raw))
    except RecursionError:
        raise BadRequest(f"JSON is nested more than {MAX_DEPTH} levels deep") from None
    except ValueError:  # includes UnicodeDecodeError
        raise BadRequest("body must be JSON") from None


async def json_object(request: Request, example: str = "") -> dict[str, Any]:
    hint = f": {example}" if example else ""
    try:
        body = parse_json(await request.body())
    except BadRequest as exc:
        if str(exc) == "body must be JSON":
            raise BadRequest(f"body must be JSON{hint}") from None
        raise
    if not isinstance(body, dict):
        raise BadRequest(f"body must be a JSON object{hint}")
    return body
