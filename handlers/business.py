"""Replies for a business action's result: answered, asking for something, or failed.

Pure like every handler: the action already ran (in the engine's act step,
:mod:`handlers.actions.act`); this turns its :class:`ActionRun` into replies and new conversation
state.  Whatever went wrong — timeout, error, an action that said nothing — the customer gets
a polite reply and a human, never a stack trace (首问负责制: the bot keeps ownership).
"""

from __future__ import annotations

import logging
import string
from collections.abc import Mapping
from typing import Any

from bot.config import HandoffConfig
from bot.types import ActionRun, ActionStatus, Conversation, Decision, HandoffRequest, Reason, Reply
from handlers.actions.call import REQUESTED_SLOT
from handlers.texts import say
from knowledge.schema import KnowledgeBase

log = logging.getLogger(__name__)

BusinessOutcome = tuple[tuple[Reply, ...], Conversation, HandoffRequest | None]


def outcome(decision: Decision, conv: Conversation, kb: KnowledgeBase, config: HandoffConfig) -> BusinessOutcome:
    """Replies and state for a decision that answers an entry naming an action."""
    entry = kb.get(decision.entry_id or "")
    run = decision.action_run
    if run is None:  # an action entry reached without a runner in the path (e.g. answered by another layer)
        run = ActionRun(entry.action if entry else "", ActionStatus.FAILED, detail="the action was not run")
    language = decision.language
    slots = {**conv.slots, **run.slots}
    if run.status is ActionStatus.ASK:
        again = conv.pending_action == run.name
        replies = _replies(run.messages) or (Reply(say("action_ask", language)),)
        return replies, conv.evolve(pending_action=run.name, slots=slots, pending_suggestions=(),
                                    failures=conv.failures + 1 if again else 0), None
    slots.pop(REQUESTED_SLOT, None)
    if run.status is ActionStatus.DONE:
        replies = _replies(run.messages)
        if not replies and entry is not None and entry.answer:
            text = render(entry.answer_in(language), slots)
            replies = (Reply(text),) if text else ()
        if replies:
            return replies, conv.evolve(pending_action="", slots=slots, pending_suggestions=(), failures=0), None
        run = ActionRun(run.name, ActionStatus.FAILED, slots=run.slots, detail="the action produced no reply "
                        "(and the entry's answer template could not be filled)")
    if run.status is ActionStatus.HANDOFF:
        replies = _replies(run.messages) or (Reply(say("action_handoff", language, wait=config.expected_wait_minutes)),)
        request = HandoffRequest(Reason.ACTION_HANDOFF, f"business action {run.name} asked for an agent",
                                 decision.candidates)
    else:
        replies = (Reply(say("action_failed", language, wait=config.expected_wait_minutes)),)
        request = HandoffRequest(Reason.ACTION_FAILED, f"business action {run.name} failed: {run.detail}",
                                 decision.candidates)
    return replies, conv.evolve(pending_action="", slots=slots, pending_suggestions=(), handoff=request), request


def render(template: str, slots: Mapping[str, Any]) -> str:
    """Fill ``{slot}`` placeholders; "" if one is missing (the caller then hands off, never shows "{eta}")."""
    try:
        names = {field for _, field, _, _ in string.Formatter().parse(template) if field}
        if any(slots.get(name) in (None, "") for name in names):
            log.warning("answer template needs %s, the action set %s", sorted(names), sorted(slots))
            return ""
        return template.format_map({k: v for k, v in slots.items()})
    except (ValueError, KeyError, IndexError, AttributeError) as exc:
        log.warning("answer template %r cannot be filled: %s", template[:80], exc)
        return ""


def _replies(messages: tuple[str, ...]) -> tuple[Reply, ...]:
    return tuple(Reply(text) for text in messages)
