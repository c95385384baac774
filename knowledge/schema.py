"""The knowledge-base file format: a YAML list of entries.

Each entry has ``id``, ``questions`` (first one canonical, any language), ``answer`` (a string
or a mapping language → string) and optional ``tags`` and ``enabled``.  An entry may instead (or
as well) name a business ``action`` (a rasa-sdk action such as ``action_order_status``); its
``answer``, if any, is then a template filled from the action's slots.  Parsing validates the
whole file before returning anything, so an import is all-or-nothing and every error names
the entry (and, where YAML knows it, the line).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ID_PATTERN = re.compile(r"^[^\s/]{1,128}$")
ACTION_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,127}$")
LANGUAGES = ("zh", "en")


class KnowledgeError(ValueError):
    """A knowledge file or entry is invalid; the message says where and why."""


@dataclass(frozen=True)
class Entry:
    id: str
    questions: tuple[str, ...]
    answer: Mapping[str, str]
    tags: tuple[str, ...] = ()
    enabled: bool = True
    action: str = ""  # a business action to run instead of (or to fill) the fixed answer

    @property
    def title(self) -> str:
        return self.questions[0]

    def answer_in(self, language: str) -> str:
        """The answer in ``language``, else in another language the entry has."""
        if language in self.answer:
            return self.answer[language]
        for other in (*LANGUAGES, *self.answer):
            if other in self.answer:
                return self.answer[other]
        return ""

    def title_in(self, language: str) -> str:
        """The first question written in ``language`` (for clarify buttons), else the canonical."""
        for question in self.questions:
            if _looks_chinese(question) == (language == "zh"):
                return question
        return self.title

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"id": self.id, "questions": list(self.questions)}
        if self.answer or not self.action:
            data["answer"] = dict(self.answer)
        if self.action:
            data["action"] = self.action
        if self.tags:
            data["tags"] = list(self.tags)
        if not self.enabled:
            data["enabled"] = False
        return data


@dataclass(frozen=True)
class KnowledgeBase:
    entries: tuple[Entry, ...]
    _by_id: dict[str, Entry] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_id", {entry.id: entry for entry in self.entries})

    def __len__(self) -> int:
        return len(self.entries)

    def __iter__(self) -> Iterator[Entry]:
        return iter(self.entries)

    def get(self, entry_id: str) -> Entry | None:
        return self._by_id.get(entry_id)

    @property
    def active(self) -> tuple[Entry, ...]:
        return tuple(entry for entry in self.entries if entry.enabled)

    def content_hash(self) -> str:
        """Stable hash of the content, used as the cache key of search indexes."""
        payload = json.dumps([e.to_json() for e in self.entries], ensure_ascii=False, sort_keys=True)
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:16]

    def phrasing_count(self) -> int:
        return sum(len(entry.questions) for entry in self.active)


def _looks_chinese(text: str) -> bool:
    return any("\u4e00" <= ch <= "\u9fff" for ch in text)


class _LineLoader(yaml.SafeLoader):
    """A safe loader that remembers the line each mapping starts on, for error messages, and
    refuses aliases: a few hundred bytes of nested ``*alias`` references expand to gigabytes
    (the "billion laughs" of YAML), and a knowledge file never needs them."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]
            raise KnowledgeError(f"line {mark.line + 1}: YAML anchors and aliases (&name, *name) are not "
                                 "accepted in a knowledge file; write the value out")
        return super().compose_node(parent, index)


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    mapping = loader.construct_mapping(node, deep=True)
    mapping["__line__"] = node.start_mark.line + 1
    return mapping


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _strings(value: Any, where: str, field_name: str) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str | int | float) for v in value):
        raise KnowledgeError(f"{where}: '{field_name}' must be a list of strings")
    cleaned = tuple(str(v).strip() for v in value if str(v).strip())
    return cleaned


def parse_entry(raw: Any, where: str = "entry") -> Entry:
    """Validate one entry mapping (from YAML, JSON or a form) and build an :class:`Entry`."""
    if not isinstance(raw, Mapping):
        raise KnowledgeError(f"{where}: an entry must be a mapping with id, questions and answer")
    line = raw.get("__line__")
    data = {k: v for k, v in raw.items() if k != "__line__"}
    entry_id = data.get("id")
    shown = repr(entry_id) if isinstance(entry_id, str | int) else type(entry_id).__name__
    shown = shown if len(shown) <= 80 else shown[:77] + "..."  # never echo a huge value back
    label = f"{where} (id {shown}" + (f", line {line})" if line else ")")
    unknown = sorted(set(data) - {"id", "questions", "answer", "tags", "enabled", "action"})
    if unknown:
        raise KnowledgeError(f"{label}: unknown field(s) {', '.join(map(str, unknown))}")
    if not isinstance(entry_id, str | int) or not ID_PATTERN.match(str(entry_id)):
        raise KnowledgeError(f"{label}: 'id' is required: up to 128 characters, no spaces or '/'")
    questions = _strings(data.get("questions"), label, "questions")
    if not questions:
        raise KnowledgeError(f"{label}: 'questions' needs at least one question")
    action = data.get("action", "")
    if action is None or action == "":
        action = ""
    elif not isinstance(action, str) or not ACTION_PATTERN.match(action):
        raise KnowledgeError(f"{label}: 'action' must be an action name such as action_order_status "
                             "(letters, digits, _ . -)")
    answer = data.get("answer")
    if isinstance(answer, str) and answer.strip():
        answers = {"zh" if _looks_chinese(answer) else "en": answer.strip()}
    elif isinstance(answer, Mapping) and answer:
        answers = {}
        for lang, text in answer.items():
            if lang == "__line__":
                continue
            if not isinstance(lang, str) or not isinstance(text, str) or not text.strip():
                raise KnowledgeError(f"{label}: 'answer.{lang}' must be a non-empty string")
            answers[lang] = text.strip()
    else:
        answers = {}
    if not answers and not (action and answer is None):  # no answer at all: the action writes the reply
        raise KnowledgeError(f"{label}: 'answer' must be a string or a mapping language → string"
                             " (it may be left out only when the entry names an 'action')")
    tags = _strings(data.get("tags", []), label, "tags")
    enabled = data.get("enabled", True)
    if not isinstance(enabled, bool):
        raise KnowledgeError(f"{label}: 'enabled' must be true or false")
    return Entry(str(entry_id), questions, answers, tags, enabled, action)


def parse_kb(text: str, source: str = "<knowledge>") -> KnowledgeBase:
    """Parse and validate a whole knowledge file; raise on the first problem, build nothing."""
    try:
        raw = yaml.load(text, Loader=_LineLoader)
    except yaml.YAMLError as exc:
        raise KnowledgeError(f"{source}: not valid YAML: {exc}") from exc
    except KnowledgeError as exc:
        raise KnowledgeError(f"{source}: {exc}") from None
    if raw is None:
        raw = []
    if isinstance(raw, Mapping) and "entries" in raw:
        raw = raw["entries"]
    if not isinstance(raw, list):
        raise KnowledgeError(f"{source}: expected a YAML list of entries")
    entries = [parse_entry(item, f"{source}: entry {i + 1}") for i, item in enumerate(raw)]
    return build_kb(entries, source)


def build_kb(entries: Iterable[Entry], source: str = "<knowledge>") -> KnowledgeBase:
    seen: set[str] = set()
    result = []
    for entry in entries:
        if entry.id in seen:
            raise KnowledgeError(f"{source}: duplicate entry id {entry.id!r}")
        seen.add(entry.id)
        result.append(entry)
    return KnowledgeBase(tuple(result))


def load_kb(path: str | Path) -> KnowledgeBase:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise KnowledgeError(f"{path}: file not found") from exc
    except UnicodeDecodeError as exc:
        raise KnowledgeError(f"{path}: not UTF-8 text") from exc
    return parse_kb(text, str(path))


def dump_kb(kb: KnowledgeBase) -> str:
    """Serialise to the same YAML format :func:`parse_kb` reads."""
    return yaml.safe_dump([entry.to_json() for entry in kb.entries], allow_unicode=True,
                          sort_keys=False, width=100)
