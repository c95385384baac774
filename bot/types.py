"""Core data types: the only shapes that cross the boundary between adapters and the core.

Adapters turn platform objects into an :class:`InboundMessage` and render :class:`Reply`
objects back; nothing platform-specific travels further in.  Everything here is a frozen
dataclass so a turn can be reasoned about as "data in, data out".
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any, TypedDict, Unpack


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


class Reason(StrEnum):
    """Why the bot decided what it did (``Decision.reason``); for a handoff, the stable code the
    ticket, the metrics and the agent see.  String-valued, so every stored form is the plain word."""

    NONE = ""
    CLARIFY_CHOICE = "clarify_choice"  # the customer picked one of the offered entries
    COMPLAINT = "complaint"
    HUMAN_REQUEST = "human_request"
    REPEATED_FAILURE = "repeated_failure"
    LOW_CONFIDENCE = "low_confidence"
    ACTION_FAILED = "action_failed"  # a business action errored or timed out
    ACTION_HANDOFF = "action_handoff"  # a business action asked for a human
    PENDING_ACTION = "pending_action"  # the message answered a business action's question
    CANCEL = "cancel"  # the customer cancelled a business action
    RASA = "rasa"  # decided by a Rasa model (intents.backend: rasa)


class Intent(StrEnum):
    """What a message was about (``Decision.intent``): an FAQ question, a kind of smalltalk, or the
    finer cause of an escalation.  String-valued: the eval output and the logs keep the plain word."""

    FAQ = "faq"
    ACTION = "action"  # the answer to a business action's question
    ACTION_CANCELLED = "action_cancelled"
    ATTACHMENT = "attachment"  # a file or photo without text
    OUT_OF_SCOPE = "out_of_scope"
    COMPLAINT_BY_MEANING = "complaint_by_meaning"
    REPEATED_FAILURE = "repeated_failure"
    HANDOFF = "handoff"  # a handoff the desk words (no customer message behind it)
    HUMAN = "human"  # a Rasa intent mapped to "a human, now"
    # smalltalk (intents.smalltalk.Smalltalk has the same values)
    GREETING = "greeting"
    THANKS = "thanks"
    GOODBYE = "goodbye"
    BOT_IDENTITY = "bot_identity"
    HELP = "help"
    OFF_TOPIC = "off_topic"
    # escalation kinds (intents.escalation)
    ASKED_FOR_HUMAN = "asked_for_human"
    COMPLAINT = "complaint"
    THREAT_AUTHORITY = "threat_authority"
    THREAT_PUBLIC = "threat_public"
    LEGAL = "legal"
    CHARGEBACK = "chargeback"
    INSULT = "insult"
    ANGER = "anger"
    MANAGER = "manager"
    ULTIMATUM = "ultimatum"
    DEMAND = "demand"
    BROKEN_PROMISE = "broken_promise"
    LOSS_BLAME = "loss_blame"
    SARCASM = "sarcasm"
    UNRESOLVED = "unresolved"
    COMPENSATION = "compensation"
    LONG_WAIT = "long_wait"
    NOT_UNDERSTOOD = "not_understood"
    REPEATED_QUESTION = "repeated_question"


class ActionStatus(StrEnum):
    """How a business action ended (``ActionRun.status``)."""

    DONE = "done"  # answered
    ASK = "ask"  # needs more from the customer: keep it pending
    HANDOFF = "handoff"  # the action asked for a human
    FAILED = "failed"  # error or timeout


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
class Choice:
    """A pressed button or tapped menu item: the :class:`Suggestion` payload it carries, and its
    label (the words the customer saw, used when the choice is no longer on offer)."""

    payload: str
    label: str = ""

    def said(self, offered: tuple[str, ...]) -> str:
        """The choice as the customer could have typed it: its number among the ``offered`` entry
        ids ("2", which also keeps the conversation's language), else its label, else the payload."""
        if self.payload and self.payload in offered:
            return str(offered.index(self.payload) + 1)
        return self.label or self.payload


@dataclass(frozen=True)
class InboundMessage:
    """One customer message as the core sees it, whatever platform it came from.

    ``choice`` is set when the message is a button press (the adapter reads it from the
    platform's callback data or menu id); ``text`` is then its label.  ``raw`` is the adapter's
    own parsed payload, kept only so the adapter can use it again (e.g. to answer a callback
    query); the core never reads it.
    """

    channel: str
    user_id: str
    chat_id: str
    text: str
    message_id: str
    sent_at: float = field(default_factory=time.time)
    attachments: tuple[Attachment, ...] = ()
    display_name: str = ""
    choice: Choice | None = None
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
    """The bot asks for a human.  ``reason`` is a stable code (a :class:`Reason` value, or one a
    Rasa assistant set in its ``kefu_handoff_reason`` slot), ``detail`` is for the agent."""

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


class ConversationChange(TypedDict, total=False):
    """The fields one state change may set (:meth:`Conversation.evolve`), each with its type."""

    state: ConversationState
    language: str
    transcript: tuple[TranscriptLine, ...]
    profile: CustomerProfile
    pending_suggestions: tuple[str, ...]
    failures: int
    handoff: HandoffRequest | None
    updated_at: float
    pending_action: str
    slots: dict[str, Any]


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

    def evolve(self, **changes: Unpack[ConversationChange]) -> Conversation:
        """A copy with ``changes``; typed field by field, so mypy checks every state change."""
        return replace(self, **changes)

    def with_lines(self, lines: tuple[TranscriptLine, ...] | list[TranscriptLine]) -> Conversation:
        """The conversation with ``lines`` appended to its transcript (as the store appends them)."""
        return replace(self, transcript=(*self.transcript, *lines))

    def back_to_bot(self) -> Conversation:
        """The bot is responsible again: no handoff, and earlier misunderstandings no longer count."""
        return replace(self, state=ConversationState.BOT, handoff=None, failures=0)

    def customer_texts(self) -> list[str]:
        return [line.text for line in self.transcript if line.role is Role.CUSTOMER]


@dataclass(frozen=True)
class ActionRun:
    """A business action already run for this message.

    Actions do I/O (the company's order API, a remote action server), so the engine runs them
    in the turn's *act* step, between the pure classification and the pure handlers, which
    only turn the result into replies.
    """

    name: str
    status: ActionStatus
    messages: tuple[str, ...] = ()
    slots: dict[str, Any] = field(default_factory=dict)
    detail: str = ""


@dataclass(frozen=True)
class Decision:
    """What the intent layer decided for one message; the eval CLI writes exactly this."""

    action: Action
    language: str
    intent: Intent
    confidence: float = 0.0
    entry_id: str | None = None
    suggestions: tuple[str, ...] = ()
    reason: Reason = Reason.NONE
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
