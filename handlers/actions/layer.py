"""Run the business action of the entry the customer asked about, inside the classification step.

Actions do I/O, and the engine already runs ``IntentLayer.decide`` in a worker thread, so this
layer wraps the real intent layer: when the decision answers an entry that names an ``action``
(or a previous action is waiting for the customer's answer), it runs the action there and
attaches the result to the decision.  The handlers then only turn that result into replies.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from dataclasses import replace

from bot.types import Action, ActionRun, Conversation, Decision
from handlers.actions.call import ASK, FAILED, action_call
from handlers.actions.runner import ActionRunner
from intents.base import IntentLayer
from intents.escalation import is_cancel_request
from intents.smalltalk import Smalltalk
from knowledge.schema import Entry, KnowledgeBase

log = logging.getLogger(__name__)

ESCALATIONS = frozenset({"complaint", "human_request"})
WORDS = re.compile(r"[A-Za-z]{2,}|[\u4e00-\u9fff]")  # something that shows a language, unlike an order number


class BusinessActionLayer:
    def __init__(self, inner: IntentLayer, kb: KnowledgeBase, runner: ActionRunner | None,
                 max_asks: int = 2, clock: Callable[[], float] = time.time) -> None:
        self.inner = inner
        self.kb = kb
        self.runner = runner
        self.max_asks = max(1, max_asks)
        self.clock = clock
        if runner is None:
            for entry in kb.active:
                if entry.action:
                    log.warning("entry %s names action %s but neither actions.module nor actions.server_url "
                                "is set: it will be handed off", entry.id, entry.action)
        self._has_actions = any(entry.action for entry in kb.active)

    def is_quick(self, text: str, conversation: Conversation) -> bool:
        """An action may do I/O, and which entry is meant is known only after deciding: with
        actions to run, every turn goes to the worker thread."""
        may_call = self.runner is not None and (self._has_actions or bool(conversation.pending_action))
        return not may_call and self.inner.is_quick(text, conversation)

    def decide(self, text: str, conversation: Conversation) -> Decision:
        decision = self.inner.decide(text, conversation)
        if conversation.pending_action:
            return self._continue(text, conversation, decision)
        entry = self._action_entry(decision)
        if entry is None:
            return decision
        return replace(decision, action_run=self._run(entry.action, text, conversation, decision))

    def _continue(self, text: str, conv: Conversation, decision: Decision) -> Decision:
        """The action asked a question last turn: this message is most likely the answer."""
        if decision.action is Action.HANDOFF and decision.reason in ESCALATIONS:
            return decision  # a complaint or "转人工" always wins
        if not WORDS.search(text):  # "A123456" alone is not English: keep the conversation's language
            decision = replace(decision, language=conv.language)
        if is_cancel_request(text):
            return Decision(Action.SMALLTALK, decision.language, "action_cancelled", 1.0, reason="cancel")
        name = conv.pending_action
        entry = next((e for e in self.kb.active if e.action == name), None)
        run = self._run(name, text, conv, decision)
        if run.status == ASK:
            moved_on = (decision.action is Action.ANSWER or (
                decision.action is Action.SMALLTALK and decision.intent != Smalltalk.OFF_TOPIC)) and (
                decision.entry_id is None or decision.entry_id != (entry.id if entry else None))
            if moved_on:  # "查订单" … "怎么退货": answer the new question instead of asking again
                new_entry = self._action_entry(decision)
                if new_entry is not None:
                    return replace(decision, action_run=self._run(new_entry.action, text, conv, decision))
                return decision
            if conv.failures + 1 >= self.max_asks:
                return Decision(Action.HANDOFF, decision.language, "repeated_failure", decision.confidence,
                                reason="repeated_failure", candidates=decision.candidates,
                                detail=f"action {name} still waiting for {run.slots.get('requested_slot')!s} "
                                       f"after {conv.failures + 1} tries")
        return Decision(Action.ANSWER, decision.language, "action", 1.0, entry_id=entry.id if entry else None,
                        reason="pending_action", action_run=run, candidates=decision.candidates)

    def _action_entry(self, decision: Decision) -> Entry | None:
        if decision.action is not Action.ANSWER or decision.action_run is not None:
            return None
        entry = self.kb.get(decision.entry_id or "")
        return entry if entry is not None and entry.action else None

    def _run(self, name: str, text: str, conv: Conversation, decision: Decision) -> ActionRun:
        if self.runner is None:
            return ActionRun(name, FAILED, detail="no action runner configured (actions.module / actions.server_url)")
        call = action_call(name, text, conv, decision.language, decision.entry_id or decision.intent,
                           decision.confidence, self.clock())
        run = self.runner.run(call)
        log.info("business action %s for %s: %s%s", name, conv.id, run.status,
                 f" ({run.detail})" if run.detail else "")
        return run
