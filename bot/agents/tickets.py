"""Handoff tickets: what a ticket is, how it reads to an agent, its one-line summary.

Where tickets are kept — the hash per ticket, the waiting queue and every transition script —
is :mod:`bot.storage.tickets`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from bot.types import Candidate, Conversation, HandoffRequest, Role

PRIORITY = {"complaint": 0, "human_request": 1, "repeated_failure": 1}
DEFAULT_PRIORITY = 2
OPEN_STATUSES = ("queued", "claimed")
REASON_WORDS = {
    "complaint": ("投诉", "Complaint"),
    "human_request": ("要求人工", "Asked for a human"),
    "repeated_failure": ("机器人多次未能解答", "Bot failed repeatedly"),
    "low_confidence": ("机器人没有把握", "Bot was unsure"),
}
@dataclass(frozen=True)
class Ticket:
    id: str
    conversation_id: str
    channel: str
    user_id: str
    reason: str
    detail: str
    language: str
    priority: int
    created_at: float
    status: str = "queued"
    owner: str = ""
    claimed_at: float = 0.0
    closed_at: float = 0.0
    escalated_at: float = 0.0
    after_hours: bool = False
    summary: str = ""
    customer_name: str = ""
    context: dict[str, Any] = field(default_factory=dict)
    rating: int = 0
    comment: str = ""
    group: str = ""  # skill group it is routed to ("" = anyone)
    assigned: str = ""  # "auto" when the desk assigned it, "" when an agent claimed it
    left_message: bool = False  # opened with no agent online or after hours: a message to answer first
    contact: str = ""  # phone / e-mail the customer left for a call back
    wrapup: dict[str, Any] = field(default_factory=dict)  # {category, tags, outcome} at resolve
    first_response_at: float = 0.0  # the owner's first message to the customer

    @property
    def open(self) -> bool:
        return self.status in OPEN_STATUSES

    @classmethod
    def from_hash(cls, data: dict[str, str]) -> Ticket:
        return cls(
            id=data["id"], conversation_id=data["conversation_id"], channel=data["channel"],
            user_id=data["user_id"], reason=data["reason"], detail=data.get("detail", ""),
            language=data.get("language", "zh"), priority=int(data.get("priority", DEFAULT_PRIORITY)),
            created_at=float(data["created_at"]), status=data.get("status", "queued"),
            owner=data.get("owner", ""), claimed_at=float(data.get("claimed_at") or 0),
            closed_at=float(data.get("closed_at") or 0), escalated_at=float(data.get("escalated_at") or 0),
            after_hours=data.get("after_hours") == "1", summary=data.get("summary", ""),
            customer_name=data.get("customer_name", ""), context=json.loads(data.get("context") or "{}"),
            rating=int(data.get("rating") or 0), comment=data.get("comment", ""),
            group=data.get("group", ""), assigned=data.get("assigned", ""),
            left_message=data.get("left_message") == "1", contact=data.get("contact", ""),
            wrapup=json.loads(data.get("wrapup") or "{}"),
            first_response_at=float(data.get("first_response_at") or 0),
        )

    def to_json(self) -> dict[str, Any]:
        """The ticket as the console and the REST API show it."""
        zh, en = REASON_WORDS.get(self.reason, (self.reason, self.reason))
        return {
            "id": self.id, "conversation_id": self.conversation_id, "channel": self.channel,
            "user_id": self.user_id, "customer_name": self.customer_name, "reason": self.reason,
            "reason_words": zh if self.language == "zh" else en, "detail": self.detail,
            "language": self.language, "priority": self.priority, "created_at": self.created_at,
            "status": self.status, "owner": self.owner, "claimed_at": self.claimed_at,
            "closed_at": self.closed_at, "escalated": self.escalated_at > 0, "escalated_at": self.escalated_at,
            "after_hours": self.after_hours, "summary": self.summary, "rating": self.rating or None,
            "comment": self.comment, "group": self.group, "assigned": self.assigned,
            "left_message": self.left_message, "contact": self.contact, "wrapup": self.wrapup or None,
            "first_response_at": self.first_response_at,
        }


def reason_words(reason: str, language: str) -> str:
    zh, en = REASON_WORDS.get(reason, (reason, reason))
    return zh if language == "zh" else en


_PHONE = re.compile(r"(?<!\d)(1[3-9]\d)\d{4}(\d{4})(?!\d)")


def mask_phones(text: str) -> str:
    """138****1234: the inbox is seen by every agent, the full number only in the ticket (rule 9)."""
    return _PHONE.sub(r"\1****\2", text)


def summarize(conv: Conversation, request: HandoffRequest, earlier: int) -> str:
    """One line an agent reads in five seconds: why, what the customer said, what came before."""
    zh = conv.language == "zh"
    said = [mask_phones(line.text) for line in conv.transcript if line.role is Role.CUSTOMER]
    last = said[-1] if said else ""
    last = last if len(last) <= 60 else last[:59] + "…"
    before = [t for t in said[:-1]][-2:]
    parts = [reason_words(request.reason, conv.language)]
    parts.append(f"客户说：“{last}”" if zh else f"customer said: \"{last}\"")
    if before:
        joined = "；".join(before) if zh else "; ".join(before)
        parts.append(f"之前问过：{joined[:60]}" if zh else f"asked before: {joined[:60]}")
    if request.candidates:
        top = request.candidates[0]
        parts.append(f"机器人最接近的答案 {top.entry_id}（{top.score:.0%}）" if zh
                     else f"bot's best guess {top.entry_id} ({top.score:.0%})")
    if earlier:
        parts.append(f"第{earlier + 1}次转人工" if zh else f"handoff #{earlier + 1} for this customer")
    return " · ".join(parts)


def candidates_json(candidates: Sequence[Candidate]) -> list[dict[str, Any]]:
    return [{"entry_id": c.entry_id, "score": round(c.score, 4), "question": c.question} for c in candidates]
