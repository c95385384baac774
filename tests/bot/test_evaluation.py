"""``kefu eval``'s scores: a false escalation is a case that is not a complaint handed off as one."""

from __future__ import annotations

from typing import Any

from bot.evaluation import Case, Summary


def row(action: str, reason: str = "", entry_id: str | None = None, intent: str = "faq") -> dict[str, Any]:
    return {"action": action, "reason": reason, "entry_id": entry_id, "intent": intent, "ms": 1.0}


def test_false_escalations_count_complaints_and_human_requests_that_were_not_asked_for() -> None:
    summary = Summary()
    summary.add(Case("我要投诉", "handoff"), row("handoff", "complaint"))  # right: not counted
    summary.add(Case("退款多久到账", "refund-time"), row("handoff", "complaint"))  # a false alarm
    summary.add(Case("great service, thanks!", "no-answer"), row("handoff", "human_request"))  # a false alarm
    summary.add(Case("礼品卡怎么用", "gift-card"), row("handoff", "low_confidence"))  # a gap, not an alarm
    summary.add(Case("今天天气", "off-topic"), row("smalltalk", intent="off_topic"))
    assert (summary.false_escalations, summary.not_handoff_cases) == (2, 4)
    assert dict(summary.rows())["false escalations (complaint / human)"] == "50.0% (2/4)"
