"""Thumbs up / down on the bot's last answer in the web chat (``POST /api/feedback``).

A thumbs-down puts the question among the unanswered ones (四个不漏: a wrong answer the customer
noticed is as much a gap as a question the bot could not answer).  Public like the web chat
itself: the session id is the customer's own secret; one vote per answer.
"""

from __future__ import annotations

import re
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from bot import keys
from bot.admin.recorder import TurnRecorder, day_of
from bot.errors import BadRequest
from bot.json_body import json_object
from bot.store import Store
from bot.types import Role

SESSION = re.compile(r"^[A-Za-z0-9_-]{8,64}$")  # the web chat's session ids


class Feedback:
    def __init__(self, store: Store, recorder: TurnRecorder) -> None:
        self.store = store
        self.recorder = recorder

    async def vote(self, request: Request) -> Response:
        body = await json_object(request, '{"session": "...", "helpful": true}')
        session, helpful = body.get("session"), body.get("helpful")
        if not isinstance(session, str) or not SESSION.match(session):
            raise BadRequest("'session' must be the web chat's session id")
        if not isinstance(helpful, bool):
            raise BadRequest("'helpful' must be true or false")
        conv = await self.store.load_conversation(f"web:{session}")
        asked = None
        for line in reversed(conv.transcript if conv else ()):
            if line.role is Role.CUSTOMER and isinstance(line.meta.get("decision"), dict):
                asked = line
                break
        if conv is None or asked is None:
            raise BadRequest("there is no answer to rate yet", status=404)
        if not await self.store.first_time("feedback", f"{conv.id}:{asked.at}"):
            return JSONResponse({"recorded": False})
        decision: dict[str, Any] = asked.meta["decision"]
        if helpful:
            await self.store.redis.hincrby(keys.admin_metrics(day_of(self.recorder.clock())), "thumbs_up", 1)
        else:
            await self.recorder.thumbs_down(conv.id, asked.text, conv.language, decision.get("entry_id"))
        return JSONResponse({"recorded": True})
