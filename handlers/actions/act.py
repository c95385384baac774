"""The act step of a turn: run the business action a decision calls for, and fold in its result.

Between the pure classification (:mod:`intents.classify`) and the pure handlers (:mod:`handlers`)
the engine awaits :meth:`BusinessActions.act`.  It runs an action when the decision answers an
entry that names an ``action``, or when a previous action is waiting for the customer's answer
(``conversation.pending_action``): which action, and what its result means for the decision, are
pure functions (:func:`plan`, :func:`settle`); only :meth:`ActionRunner.run` does I/O, awaited on
the event loop with the runner's injected async client.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from bot.types import Action, ActionRun, ActionStatus, Conversation, Decision, Intent, Reason
from handlers.actions.call import REQUESTED_SLOT, action_call
from handlers.actions.runner import ActionRunner
from intents.escalation import is_cancel_request
from knowledge.schema import Entry, KnowledgeBase

log = logging.getLogger(__name__)

ESCALATIONS = frozenset({Reason.COMPLAINT, Reason.HUMAN_REQUEST})
WORDS = re.compile(r"[A-Za-z]{2,}|[\u4e00-\u9fff]")  # something that shows a language, unlike an order number


@dataclass(frozen=True)
class Run:
    """What :func:`plan` asks for: run action ``name``; ``waiting`` when it is the pending action
    (its result is then settled by :func:`settle`)."""

    name: str
    decision: Decision
    waiting: bool = False


def plan(decision: Decision, text: str, conv: Conversation, kb: KnowledgeBase) -> Decision | Run:
    """Pure: the decision as it stands (no action to run), or the action to run for it."""
    if conv.pending_action:
        if decision.action is Action.HANDOFF and decision.reason in ESCALATIONS:
            return decision  # a complaint or "转人工" always wins
        if not WORDS.search(text):  # "A123456" alone is not English: keep the conversation's language
            decision = replace(decision, language=conv.language)
        if is_cancel_request(text):
            return Decision(Action.SMALLTALK, decision.language, Intent.ACTION_CANCELLED, 1.0, reason=Reason.CANCEL)
        return Run(conv.pending_action, decision, waiting=True)
    entry = action_entry(decision, kb)
    return decision if entry is None else Run(entry.action, decision)


def settle(run: ActionRun, planned: Run, conv: Conversation, kb: KnowledgeBase, max_asks: int) -> Decision | Run:
    """Pure: the decision once ``planned`` has run, or the next action to run (the customer moved
    on from a waiting action to another entry that names one)."""
    decision = planned.decision
    if not planned.waiting:
        return replace(decision, action_run=run)
    name = planned.name
    entry = next((e for e in kb.active if e.action == name), None)
    if run.status is ActionStatus.ASK:
        moved_on = (decision.action is Action.ANSWER or (
            decision.action is Action.SMALLTALK and decision.intent is not Intent.OFF_TOPIC)) and (
            decision.entry_id is None or decision.entry_id != (entry.id if entry else None))
        if moved_on:  # "查订单" … "怎么退货": answer the new question instead of asking again
            new_entry = action_entry(decision, kb)
            return Run(new_entry.action, decision) if new_entry is not None else decision
        if conv.failures + 1 >= max_asks:
            return Decision(Action.HANDOFF, decision.language, Intent.REPEATED_FAILURE, decision.confidence,
                            reason=Reason.REPEATED_FAILURE, candidates=decision.candidates,
                            detail=f"action {name} still waiting for {run.slots.get(REQUESTED_SLOT)!s} "
                                   f"after {conv.failures + 1} tries")
    return Decision(Action.ANSWER, decision.language, Intent.ACTION, 1.0, entry_id=entry.id if entry else None,
                    reason=Reason.PENDING_ACTION, action_run=run, candidates=decision.candidates)


def action_entry(decision: Decision, kb: KnowledgeBase) -> Entry | None:
    """The answered entry, if it names an action that has not run yet."""
    if decision.action is not Action.ANSWER or decision.action_run is not None:
        return None
    entry = kb.get(decision.entry_id or "")
    return entry if entry is not None and entry.action else None


class BusinessActions:
    """Runs the actions decisions call for with ``runner`` (None: none configured, every action fails)."""

    def __init__(self, runner: ActionRunner | None, max_asks: int = 2, clock: Callable[[], float] = time.time) -> None:
        self.runner = runner
        self.max_asks = max(1, max_asks)
        self.clock = clock
        self._kb: KnowledgeBase | None = None
        self._kb_has_actions = False

    def _in_use(self, kb: KnowledgeBase) -> bool:
        """Whether actions matter for ``kb``: a runner is configured or an entry names an action
        (without either, a stale ``pending_action`` is simply dropped by the handlers).  Checked
        once per knowledge base, which is also when unrunnable entries are reported."""
        if kb is not self._kb:
            self._kb, self._kb_has_actions = kb, any(entry.action for entry in kb.active)
            if self.runner is None:
                for entry in kb.active:
                    if entry.action:
                        log.warning("entry %s names action %s but neither actions.module nor actions.server_url "
                                    "is set: it will be handed off", entry.id, entry.action)
        return self.runner is not None or self._kb_has_actions

    async def act(self, decision: Decision, text: str, conv: Conversation, kb: KnowledgeBase) -> Decision:
        """The decision with its business action run (``action_run`` set), or as it was."""
        if not self._in_use(kb):
            return decision
        step = plan(decision, text, conv, kb)
        for _ in range(2):  # a waiting action, then at most the entry the customer moved on to
            if not isinstance(step, Run):
                return step
            run = await self._run(step.name, text, conv, step.decision)
            step = settle(run, step, conv, kb, self.max_asks)
        assert not isinstance(step, Run)  # settle never asks for a third run: the second is not waiting
        return step

    async def close(self) -> None:
        if self.runner is not None:
            await self.runner.close()

    async def _run(self, name: str, text: str, conv: Conversation, decision: Decision) -> ActionRun:
        if self.runner is None:
            return ActionRun(name, ActionStatus.FAILED,
                             detail="no action runner configured (actions.module / actions.server_url)")
        call = action_call(name, text, conv, decision.language, decision.entry_id or decision.intent,
                           decision.confidence, self.clock())
        run = await self.runner.run(call)
        log.info("business action %s for %s: %s%s", name, conv.id, run.status,
                 f" ({run.detail})" if run.detail else "")
        return run
