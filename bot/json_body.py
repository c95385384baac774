"""The JSON object body of an API request, or a 400 that says what was expected."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from bot.errors import BadRequest


async def json_object(request: Request, example: str = "") -> dict[str, Any]:
    hint = f": {example}" if example else ""
    try:
        body = await request.json()
    except ValueError:
        raise BadRequest(f"body must be JSON{hint}") from None
    if not isinstance(body, dict):
        raise BadRequest(f"body must be a JSON object{hint}")
    return body
