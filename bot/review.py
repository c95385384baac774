"""Verdicts on the bot's answers: no silent wrong answers (四个不漏).

Every FAQ answer can be judged after the fact, by whoever notices it was wrong: the customer
(thumbs up/down in the web chat, 👍/👎 under a Telegram answer) or the agent who takes over the
conversation ("the bot's answer was wrong" next to the bot line in the agent console).  A bad
verdict puts the question on the admin review list (the unanswered questions, grouped by
meaning) next to the entry that was used, so the admin can add a phrasing or fix the entry.
WeChat and WeCom have no reactions; the follow-up "答非所问" / "转人工" right after an answer does
the same there (:func:`bot.admin.recorder.disputed_answer`).

One mechanism for every channel: a verdict names the bot line (its ``seq``) or the customer's
message (its channel message id), :func:`answered_question` finds the question that answer
answered, and :class:`AnswerReview` records it once per judge.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from itertools import pairwise
from typing import Any

from bot.admin.recorder import unanswered_record
from bot.errors import InvalidInput, NotFound
from bot.storage.conversations import Store
from bot.types import Action, Conversation, Role, TranscriptLine

CUSTOMER = "thumbs_down"  # the review-list reason of a customer's thumbs-down
AGENT = "agent_wrong"  # … of an agent's "the bot's answer was wrong"


def _answered(line: TranscriptLine) -> bool:
    decision = line.meta.get("decision")
    return line.role is Role.CUSTOMER and isinstance(decision, dict) and decision.get("action") == Action.ANSWER.value


def answers(lines: Sequence[TranscriptLine]) -> dict[int, str]:
    """The bot lines that are FAQ answers, by ``seq``, with the entry each one used: the bot
    line right after a customer line the bot answered (not a clarify, a handoff or a note)."""
    found: dict[int, str] = {}
    for previous, line in pairwise(lines):
        if line.role is Role.BOT and line.seq and _answered(previous):
            found[line.seq] = str(previous.meta["decision"].get("entry_id") or "")
    return found


def answered_question(conversation: Conversation, *, seq: int | None = None,
                      message_id: str | None = None) -> TranscriptLine:
    """The customer line whose answer is being judged: the one before bot line ``seq``, the
    customer message ``message_id``, or (neither given) the latest one the bot answered.

    Raises :class:`NotFound` for a turn this conversation does not have and :class:`InvalidInput`
    for a line that is not a bot answer (a greeting, a clarify, an agent's reply)."""
    lines = list(conversation.transcript)
    if seq is not None:
        at = next((i for i, line in enumerate(lines) if line.seq == seq), None)
        if at is None:
            raise NotFound(f"conversation {conversation.id} has no message #{seq}")
        if lines[at].role is not Role.BOT or at == 0 or not _answered(lines[at - 1]):
            raise InvalidInput(f"message #{seq} is not an answer of the bot; only FAQ answers can be judged")
        return lines[at - 1]
    if message_id is not None:
        asked = next((line for line in lines if line.role is Role.CUSTOMER
                      and line.meta.get("message_id") == message_id), None)
        if asked is None:
            raise NotFound(f"conversation {conversation.id} has no message {message_id[:40]!r}")
        if not _answered(asked):
            raise InvalidInput(f"message {message_id[:40]!r} was not answered by the bot; "
                               "only FAQ answers can be judged")
        return asked
    latest = next((line for line in reversed(lines) if _answered(line)), None)
    if latest is None:
        raise NotFound("there is no answer to rate yet")
    return latest


class AnswerReview:
    """Records verdicts (owner of the dedupe: one vote per answer and judge) through
    :class:`~bot.storage.records.AdminRecords`."""

    def __init__(self, store: Store, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.records = store.records
        self.clock = clock

    async def judge(self, conversation: Conversation | None, helpful: bool, *, reason: str = CUSTOMER,
                    seq: int | None = None, message_id: str | None = None) -> bool:
        """Record one verdict on an answer of ``conversation``; False when this judge already
        gave one on that answer (a double tap, a retried request)."""
        if conversation is None:
            raise NotFound("no such conversation")
        asked = answered_question(conversation, seq=seq, message_id=message_id)
        if not await self.store.first_time(f"verdict:{reason}", f"{conversation.id}:{asked.at}"):
            return False
        now = self.clock()
        if helpful:
            await self.records.thumbs_up(now)
            return True
        decision: dict[str, Any] = asked.meta["decision"]
        row = unanswered_record(asked.text, reason, now, conversation.id, conversation.language,
                                float(decision.get("confidence") or 0.0), decision.get("entry_id"), [])
        await self.records.thumbs_down(now, row, counter=reason)
        return True
