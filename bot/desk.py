"""The agent side of a conversation, as the engine sees it.

The engine tells the desk when a conversation is handed off, when a customer writes while a
human is responsible, and asks it whether a message after "resolved" answers the satisfaction
survey; the desk (queue, agent console: :mod:`bot.agents`) decides the rest.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Protocol

from bot.types import Conversation, ConversationState, HandoffRequest, Reply, TranscriptLine

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SurveyTurn:
    """A message that answered the survey: what to reply, and who is responsible next."""

    replies: tuple[Reply, ...]
    state: ConversationState


class AgentDesk(Protocol):
    async def accepts(self, conversation: Conversation) -> bool:
        """False for a customer on the blocked list (abuse): the bot stays, no human is called."""
        ...

    async def open_ticket(self, conversation: Conversation, request: HandoffRequest,
                          replies: tuple[Reply, ...] = ()) -> tuple[Reply, ...]:
        """Queue the conversation; return the replies to send (``replies``, possibly amended
        with the queue position or replaced by an out-of-hours notice)."""
        ...

    async def while_waiting(self, conversation: Conversation, line: TranscriptLine) -> tuple[Reply, ...]:
        """What to tell a customer who writes while queued (the message reached the agent; an
        escalation moves them up); saved with their line by the engine."""
        ...

    async def customer_wrote(self, conversation: Conversation, line: TranscriptLine) -> None: ...

    async def cancelled(self, conversation: Conversation) -> None: ...

    async def survey_answer(self, conversation: Conversation, line: TranscriptLine) -> SurveyTurn | None:
        """The reply if ``line`` answers the survey of a resolved conversation, else None."""
        ...
