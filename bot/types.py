"""Core data types: the only shapes that cross the boundary between adapters and the core.

Adapters turn platform objects into an :class:`InboundMessage` and render :class:`Reply`
objects back; nothing platform-specific travels further in.  Everything here is a frozen
dataclass so a turn can be reasoned about as "data in, data out".
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any


class ConversationState(StrEnum):
    """Who is responsible for the conversation right now."""

    BOT = "bot"
    WAITING = "waiting"  # handed off, waiting in the agent queue
    AGENT = "agent"  # an agent owns it; the bot stays silent
    CLOSED = "closed"


class Action(StrEnum):
    """What the bot decided to do with one customer message."""

    ANSWER = "answer"
    CLARIFY = "clarify"
    HANDOFF = "handoff"
    SMALLTALK = "smalltalk"


class Role(StrEnum):
    CUSTOMER = "customer"
    BOT = "bot"
    AGENT = "agent"
    SYSTEM = "system"


@dataclass(frozen=True)
class Attachment:
    """A non-text part of a message kept for the agent (photo, document, voice...)."""

    kind: str
    ref: str  # platform file id or URL; opaque to the core
    name: str = ""


@dataclass(frozen=True)
class InboundMessage:
    """One customer message as the core sees it, whatever platform it came from.

    ``raw`` is the adapter's own parsed payload, kept only so the adapter can use it again
    (e.g. to answer a callback query); the core never reads it.
    """

    channel: str
    user_id: str
    chat_id: str
    text: str
    message_id: str
    sent_at: float = field(default_factory=time.time)
    attachments: tuple[Attachment, ...] = ()
    display_name: str = ""
    raw: Any = field(default=None, compare=False, repr=False)

    @property
    def conversation_id(self) -> str:
        """One conversation per chat per channel."""
        return f"{self.channel}:{self.chat_id}"


@dataclass(frozen=True)
class Suggestion:
    """A clickable choice; channels render it as a button, menu item or numbered line."""

    label: str
    payload: str


@dataclass(frozen=True)
class Reply:
    """A message the bot (or an agent) sends to the customer."""

    text: str
    suggestions: tuple[Suggestion, ...] = ()


@dataclass(frozen=True)
class Candidate:
    """One knowledge entry the intent layer considered, with its calibrated confidence."""

    entry_id: str
    score: float
    question: str = ""


@dataclass(frozen=True)
class HandoffRequest:
    """The bot asks for a human.  ``reason`` is a stable code, ``detail`` is for the agent."""

    reason: str
    detail: str
    candidates: tuple[Candidate, ...] = ()


@dataclass(frozen=True)
class TranscriptLine:
    """One message of a conversation.  ``seq`` is assigned by the store when the line is saved:
    1, 2, 3… per conversation, so a client can ask for "everything after N" without trusting
    any clock (0: not saved yet)."""

    role: Role
    text: str
    at: float
    meta: dict[str, Any] = field(default_factory=dict)
    seq: int = 0

    def to_json(self) -> dict[str, Any]:
        data = {"role": self.role.value, "text": self.text, "at": self.at, "meta": self.meta}
        return {"seq": self.seq, **data} if self.seq else data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TranscriptLine:
        return cls(Role(data["role"]), data["text"], float(data["at"]), dict(data.get("meta") or {}),
                   int(data.get("seq") or 0))


@dataclass(frozen=True)
class CustomerProfile:
    name: str = ""
    first_seen: float = 0.0
    conversations: int = 0

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "first_seen": self.first_seen, "conversations": self.conversations}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CustomerProfile:
        return cls(str(data.get("name", "")), float(data.get("first_seen", 0.0)),
                   int(data.get("conversations", 0)))


@dataclass(frozen=True)
class Conversation:
    """Everything the core remembers about one chat.

    ``pending_suggestions`` holds the entry ids offered by the last clarify, so "1" or
    "the first one" can be resolved on the next turn; ``failures`` counts consecutive turns
    the bot did not understand, the repeated-failure escalation signal.
    """

    id: str
    channel: str
    user_id: str
    chat_id: str
    state: ConversationState = ConversationState.BOT
    language: str = "zh"
    transcript: tuple[TranscriptLine, ...] = ()
    profile: CustomerProfile = field(default_factory=CustomerProfile)
    pending_suggestions: tuple[str, ...] = ()
    failures: int = 0
    handoff: HandoffRequest | None = None
    updated_at: float = 0.0
    pending_action: str = ""  # a business action waiting for the customer's answer (e.g. an order number)
    slots: dict[str, Any] = field(default_factory=dict)  # values business actions remember (rasa-sdk slots)

    @classmethod
    def start(cls, msg: InboundMessage) -> Conversation:
        profile = CustomerProfile(name=msg.display_name, first_seen=msg.sent_at, conversations=1)
        return cls(msg.conversation_id, msg.channel, msg.user_id, msg.chat_id, profile=profile,
                   updated_at=msg.sent_at)

    def evolve(self, **changes: Any) -> Conversation:
        return replace(self, **changes)

    def customer_texts(self) -> list[str]:
        return [line.text for line in self.transcript if line.role is Role.CUSTOMER]


@dataclass(frozen=True)
class ActionRun:
    """A business action already run for this message.

    Actions do I/O (the company's order API, a remote action server), so they run in the
    classification worker thread; the pure handlers only turn the result into replies.
    ``status`` is ``done`` (answered), ``ask`` (needs more from the customer: keep it pending),
    ``handoff`` (the action asked for a human) or ``failed`` (error or timeout).
    """

    name: str
    status: str
    messages: tuple[str, ...] = ()
    slots: dict[str, Any] = field(default_factory=dict)
    detail: str = ""


@dataclass(frozen=True)
class Decision:
    """What the intent layer decided for one message; the eval CLI writes exactly this."""

    action: Action
    language: str
    intent: str
    confidence: float = 0.0
    entry_id: str | None = None
    suggestions: tuple[str, ...] = ()
    reason: str = ""
    detail: str = ""
    candidates: tuple[Candidate, ...] = ()
    action_run: ActionRun | None = None  # set when the answered entry names a business action


@dataclass(frozen=True)
class TurnResult:
    """The outcome of one engine turn: replies to send, and what happened."""

    replies: tuple[Reply, ...]
    conversation: Conversation
    decision: Decision | None = None
    handoff: HandoffRequest | None = None
    duplicate: bool = False
    in_progress: bool = False  # a duplicate whose first turn has not finished: the client should retry
