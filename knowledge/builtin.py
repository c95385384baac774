"""Examples Kefu ships for what is *not* a question for the knowledge base.

* **off-topic** (``builtin/off-topic.txt``): weather, poems, arithmetic, trivia, general advice.
  They join the deployment's own ``knowledge.out_of_scope_path`` examples as one class, so such a
  message gets "here is what I can help with" instead of an FAQ paragraph or a queue.
* **complaints** (``builtin/complaints.yaml``), by kind (a broken promise, a loss blamed on the
  company, a demand, sarcasm, ...): one class per kind, so a complaint phrased without any
  keyword is handed off, and the agent reads the kind in words.

Both are learned by the same classifier as the entries (see :mod:`knowledge.search`), which is
what lets "说好的48小时发货，现在一周了" lose to the shipping-time entry's phrasings only when it
is a question.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import yaml

BUILTIN = Path(__file__).with_name("builtin")


@dataclass(frozen=True)
class ComplaintKind:
    kind: str
    detail_en: str  # one line for the agent, e.g. "says a promise was broken"
    detail_zh: str
    examples: tuple[str, ...]


@dataclass(frozen=True)
class Examples:
    """Non-FAQ examples a retriever learns next to the entries."""

    off_topic: tuple[str, ...] = ()
    complaints: Mapping[str, ComplaintKind] = field(default_factory=dict)
    routine: tuple[str, ...] = ()  # plain problem reports: counter-examples for the complaint kinds


def read_lines(path: Path) -> tuple[str, ...]:
    """Non-empty lines of a text file, ``#`` comments dropped, duplicates once."""
    lines = (line.strip() for line in path.read_text(encoding="utf-8").splitlines())
    return tuple(dict.fromkeys(line for line in lines if line and not line.startswith("#")))


@cache
def builtin_examples() -> Examples:
    """The shipped examples (read once per process)."""
    raw = yaml.safe_load((BUILTIN / "complaints.yaml").read_text(encoding="utf-8"))
    routine = tuple(raw.pop("routine")["examples"])
    kinds = {kind: ComplaintKind(kind, spec["detail"]["en"], spec["detail"]["zh"], tuple(spec["examples"]))
             for kind, spec in raw.items()}
    return Examples(read_lines(BUILTIN / "off-topic.txt"), kinds, routine)
