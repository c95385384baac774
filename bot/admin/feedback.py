"""Thumbs up / down on the bot's last answer in the web chat (``POST /api/feedback``).

A thumbs-down puts the question among the unanswered ones (四个不漏: a wrong answer the customer
noticed is as much a gap as a question the bot could not answer).  Public like the web chat
itself: the visitor token (or the session id) is the customer's own secret; one vote per
answer, which is the bot line ``seq`` when given, else the latest answer (:mod:`bot.review`).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from bot.channels.visitor import VisitorTokens, check_origin, session_of
from bot.config import WebChannelConfig
from bot.errors import BadRequest
from bot.json_body import json_object
from bot.review import AnswerReview
from bot.storage.conversations import Store


class Feedback:
    def __init__(self, store: Store, review: AnswerReview, web: WebChannelConfig | None = None) -> None:
        self.store = store
        self.review = review
        self.web = web or WebChannelConfig()
        self.tokens = VisitorTokens(store.web, self.web.secret)

    async def vote(self, request: Request) -> Response:
        check_origin(request, self.web.allowed_origins)
        body = await json_object(request, '{"token": "...", "seq": 12, "helpful": true}')
        session = await session_of(body.get("token", body.get("session")), self.tokens, self.web.unsigned_sessions)
        helpful, seq = body.get("helpful"), body.get("seq")
        if not isinstance(helpful, bool):
            raise BadRequest("'helpful' must be true or false")
        if seq is not None and (not isinstance(seq, int) or isinstance(seq, bool) or seq < 1):
            raise BadRequest("'seq' must be the number of the answer being rated")
        conv = await self.store.load_conversation(f"web:{session}")
        recorded = await self.review.judge(conv, helpful, seq=seq)
        return JSONResponse({"recorded": recorded})
