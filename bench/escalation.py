"""CPU time of the escalation rules per message (they run on every turn, before retrieval).

    python -m bench.escalation

Texts: the shop dev cases and Kefu's own complaint, look-alike and off-topic dev cases, each
judged with a four-message history.  Reports process CPU time per message, best of several
rounds (CPU time, not wall time: the box is shared).  Was a timed unit test; timing belongs here.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from bench.intents import CASES, SHOP
from intents.escalation import detect_escalation

HISTORY = ("退款什么时候到账", "怎么退货", "运费多少", "在吗")


def texts() -> list[str]:
    files = [SHOP.cases_path, *(CASES / name for name in ("complaints-dev.jsonl", "complaint-lookalikes-dev.jsonl",
                                                           "offtopic-dev.jsonl"))]
    return [json.loads(line)["text"] for path in files if Path(path).exists()
            for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]


def main() -> int:
    messages = texts()
    rounds = []
    for _ in range(7):
        start = time.process_time()
        for text in messages:
            detect_escalation(text, HISTORY)
        rounds.append((time.process_time() - start) / len(messages) * 1000)
    print(f"detect_escalation: {len(messages)} messages, CPU per message best / median of 7 rounds: "
          f"{min(rounds):.3f} / {sorted(rounds)[3]:.3f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
