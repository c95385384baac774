"""The rasa-sdk wire format, both ways: a Kefu conversation → an action call, a result → :class:`ActionRun`.

Kefu speaks exactly what a Rasa server sends to ``POST /webhook`` (``next_action``,
``sender_id``, ``tracker`` with ``slots``, ``latest_message`` and ``events``, ``domain``,
``version``), so an action written for Rasa runs unchanged under Kefu and vice versa.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bot.types import ActionRun, ActionStatus, Conversation, Role

RASA_VERSION = "3.21.0"  # the Rasa release line whose action-call format this is
LANGUAGE_SLOT = "kefu_language"  # tells an action which language to reply in
REQUESTED_SLOT = "requested_slot"  # set by an action that waits for the customer (Rasa's form convention)
HANDOFF_ACTION = "action_kefu_handoff"  # FollowupAction(this) asks Kefu for a human
DONE, ASK, HANDOFF, FAILED = ActionStatus.DONE, ActionStatus.ASK, ActionStatus.HANDOFF, ActionStatus.FAILED


def action_call(name: str, text: str, conversation: Conversation, language: str, intent: str = "",
                confidence: float = 0.0, now: float = 0.0) -> dict[str, Any]:
    """The body Rasa would POST to an action server to run ``name`` on the message ``text``."""
    slots: dict[str, Any] = {**conversation.slots, LANGUAGE_SLOT: language}
    events: list[dict[str, Any]] = [{"event": "action", "name": "action_session_start", "timestamp": None}]
    for line in conversation.transcript:
        if line.role is Role.CUSTOMER:
            events.append({"event": "user", "timestamp": line.at, "text": line.text,
                           "parse_data": {"text": line.text}, "input_channel": conversation.channel})
        elif line.role in (Role.BOT, Role.AGENT):
            events.append({"event": "bot", "timestamp": line.at, "text": line.text, "data": {},
                           "metadata": {"role": line.role.value}})
    parse_data = {"text": text, "intent": {"name": intent, "confidence": confidence}, "entities": [],
                  "intent_ranking": [{"name": intent, "confidence": confidence}] if intent else []}
    events.append({"event": "user", "timestamp": now or None, "text": text, "parse_data": parse_data,
                   "input_channel": conversation.channel})
    tracker = {
        "sender_id": conversation.id, "slots": slots, "latest_message": parse_data,
        "latest_event_time": now or None, "followup_action": None, "paused": False, "events": events,
        "latest_input_channel": conversation.channel, "active_loop": {},
        "latest_action": {"action_name": "action_listen"}, "latest_action_name": "action_listen",
    }
    domain = {"version": "3.1", "intents": [], "entities": [], "slots": {}, "responses": {}, "actions": [name],
              "forms": {}, "e2e_actions": []}
    return {"next_action": name, "sender_id": conversation.id, "tracker": tracker, "domain": domain,
            "version": RASA_VERSION}


def run_from_result(name: str, result: Mapping[str, Any] | None) -> ActionRun:
    """Read an action server's ``{"events": [...], "responses": [...]}`` as an :class:`ActionRun`.

    The action *asks* when it leaves ``requested_slot`` set (Rasa's form convention), *hands off*
    when it returns ``FollowupAction("action_kefu_handoff")``, and is *done* otherwise.
    """
    result = result or {}
    events = result.get("events") or []
    responses = result.get("responses") or []
    if not isinstance(events, list) or not isinstance(responses, list):
        return ActionRun(name, FAILED, detail="action result is not {events: [...], responses: [...]}")
    slots: dict[str, Any] = {}
    handoff = False
    for event in events:
        if not isinstance(event, Mapping):
            continue
        if event.get("event") == "slot" and isinstance(event.get("name"), str):
            slots[event["name"]] = event.get("value")
        elif event.get("event") == "followup" and event.get("name") == HANDOFF_ACTION:
            handoff = True
    messages = tuple(str(r["text"]) for r in responses
                     if isinstance(r, Mapping) and isinstance(r.get("text"), str) and r["text"].strip())
    slots.pop(LANGUAGE_SLOT, None)
    status: ActionStatus
    if handoff:
        status = HANDOFF
    elif slots.get(REQUESTED_SLOT):
        status = ASK
    else:
        status = DONE
    return ActionRun(name, status, messages, slots)
