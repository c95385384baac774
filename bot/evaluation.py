"""``kefu eval``: run labelled cases through the live decision path and score them.

Each case is a fresh conversation through :meth:`Engine.handle` — the exact path a customer's
message takes — on an in-memory store, so an eval never touches production state.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from tqdm import tqdm

from bot.errors import KefuError
from bot.runtime import Runtime
from bot.types import Action, InboundMessage, Reason

HANDOFF = "handoff"
NO_ANSWER = "no-answer"
ESCALATIONS = (Reason.COMPLAINT, Reason.HUMAN_REQUEST)  # handoffs that say the customer is unhappy
OFF_TOPIC = "off-topic"  # chit-chat the bot answers with what it can help with: no FAQ answer, no handoff


@dataclass(frozen=True)
class Case:
    text: str
    expect: str


def read_cases(path: Path) -> list[Case]:
    cases = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise KefuError(f"{path}: file not found") from None
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
        except ValueError:
            raise KefuError(f"{path}:{number}: not valid JSON") from None
        if not isinstance(data, dict) or not isinstance(data.get("text"), str) or not isinstance(
                data.get("expect"), str):
            raise KefuError(f"{path}:{number}: expected {{\"text\": str, \"expect\": str}}")
        cases.append(Case(data["text"], data["expect"]))
    return cases


@dataclass
class Summary:
    total: int = 0
    in_scope: int = 0
    in_scope_correct: int = 0
    in_scope_handed_off: int = 0
    handoff_cases: int = 0
    handoff_caught: int = 0
    in_scope_wrong: int = 0
    oos_cases: int = 0
    oos_not_answered: int = 0
    off_topic_cases: int = 0
    off_topic_replied: int = 0
    off_topic_handed_off: int = 0
    not_handoff_cases: int = 0
    false_escalations: int = 0  # taken for a complaint or a demand for a human when none was made
    latencies_ms: list[float] = field(default_factory=list)

    def add(self, case: Case, row: dict[str, Any]) -> None:
        self.total += 1
        self.latencies_ms.append(row["ms"])
        if case.expect != HANDOFF:
            self.not_handoff_cases += 1
            self.false_escalations += row["action"] == Action.HANDOFF and row["reason"] in ESCALATIONS
        if case.expect == HANDOFF:
            self.handoff_cases += 1
            self.handoff_caught += row["action"] == Action.HANDOFF
        elif case.expect in (NO_ANSWER, OFF_TOPIC):
            self.oos_cases += 1
            self.oos_not_answered += row["action"] != Action.ANSWER
            if case.expect == OFF_TOPIC:
                self.off_topic_cases += 1
                self.off_topic_replied += row["action"] == Action.SMALLTALK and row["intent"] == "off_topic"
                self.off_topic_handed_off += row["action"] == Action.HANDOFF
        else:
            self.in_scope += 1
            self.in_scope_correct += row["action"] == Action.ANSWER and row["entry_id"] == case.expect
            self.in_scope_wrong += row["action"] == Action.ANSWER and row["entry_id"] != case.expect
            self.in_scope_handed_off += row["action"] == Action.HANDOFF

    def percentile(self, q: float) -> float:
        if not self.latencies_ms:
            return 0.0
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    def rows(self) -> list[tuple[str, str]]:
        def pct(a: int, b: int) -> str:
            return f"{100 * a / b:.1f}% ({a}/{b})" if b else "n/a"

        return [
            ("cases", str(self.total)),
            ("answer accuracy (in-scope)", pct(self.in_scope_correct, self.in_scope)),
            ("answered wrong (in-scope)", pct(self.in_scope_wrong, self.in_scope)),
            ("routine handed off", pct(self.in_scope_handed_off, self.in_scope)),
            ("handoff recall", pct(self.handoff_caught, self.handoff_cases)),
            ("false escalations (complaint / human)", pct(self.false_escalations, self.not_handoff_cases)),
            ("out-of-scope recall", pct(self.oos_not_answered, self.oos_cases)),
            ("out-of-scope answered", pct(self.oos_cases - self.oos_not_answered, self.oos_cases)),
            ("off-topic given the scope reply", pct(self.off_topic_replied, self.off_topic_cases)),
            ("off-topic handed off", pct(self.off_topic_handed_off, self.off_topic_cases)),
            ("latency p50", f"{self.percentile(0.5):.1f} ms"),
            ("latency p99", f"{self.percentile(0.99):.1f} ms"),
        ]

    def table(self) -> str:
        width = max(len(name) for name, _ in self.rows())
        return "\n".join(f"{name:<{width}}  {value}" for name, value in self.rows())


async def evaluate(runtime: Runtime, cases: list[Case], out: TextIO, progress: bool = True) -> Summary:
    """Write one decision row per case, in order, and return the scores."""
    summary = Summary()
    for number, case in enumerate(tqdm(cases, desc="eval", unit="case", disable=not progress)):
        chat = f"eval-{number}"
        msg = InboundMessage("eval", chat, chat, case.text, chat, time.time())
        started = time.perf_counter()
        result = await runtime.engine.handle(msg)
        elapsed = (time.perf_counter() - started) * 1000
        decision = result.decision
        if decision is None:
            raise KefuError(f"case {number + 1}: no decision (is the conversation with an agent?)")
        row = {
            "text": case.text, "action": decision.action.value, "intent": decision.intent,
            "entry_id": decision.entry_id,
            "suggestions": list(decision.suggestions), "reason": decision.reason,
            "confidence": round(decision.confidence, 4), "ms": round(elapsed, 2),
        }
        out.write(json.dumps(row, ensure_ascii=False) + "\n")
        summary.add(case, row)
    return summary
