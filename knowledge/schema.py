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

from knowledge.errors import FieldError as FieldError  # re-exported: schema errors are raised from here
from knowledge.errors import KnowledgeError as KnowledgeError

ID_PATTERN = re.compile(r"^[^\s/]{1,128}$")
ACTION_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,127}$")
LANGUAGES = ("zh", "en")


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


def _has_alias(node: Any) -> bool:
    """True if a composed YAML graph uses an alias: the node is then reached twice.  Stops at the
    first repeat, so an alias bomb is never expanded."""
    seen: set[int] = set()
    stack = [node]
    while stack:
        current = stack.pop()
        if id(current) in seen:
            return True
        seen.add(id(current))
        if isinstance(current, yaml.MappingNode):
            stack.extend(part for pair in current.value for part in pair)
        elif isinstance(current, yaml.SequenceNode):
            stack.extend(current.value)
    return False


_FastLoader: Any = None
if getattr(yaml, "__with_libyaml__", False):
    class _CLineLoader(yaml.CSafeLoader):  # libyaml's scanner and parser, in C
        """The same loader with libyaml parsing: a 20,000-entry file in seconds instead of half a minute."""

    _CLineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
    _FastLoader = _CLineLoader


def load_yaml(text: str) -> Any:
    """The YAML document in ``text``, each mapping with its ``__line__``.  libyaml composes the
    node graph in C (where aliases cannot be refused as they are met); a graph that has one is
    loaded again by :class:`_LineLoader`, which refuses it naming its line.  So is a text
    libyaml cannot parse: the error then reads the same with or without libyaml installed."""
    if _FastLoader is None:
        return yaml.load(text, Loader=_LineLoader)
    loader = _FastLoader(text)
    try:
        try:
            node = loader.get_single_node()
        except yaml.YAMLError:
            return yaml.load(text, Loader=_LineLoader)
        if node is not None and _has_alias(node):
            return yaml.load(text, Loader=_LineLoader)
        return loader.construct_document(node) if node is not None else None
    finally:
        loader.dispose()


def _strings(value: Any, where: str, field_name: str) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str | int | float) for v in value):
        raise KnowledgeError(FieldError(f"{where}: '{field_name}' must be a list of strings", field_name))
    cleaned = tuple(str(v).strip() for v in value if str(v).strip())
    return cleaned


def parse_entry(raw: Any, where: str = "entry", *, strict: bool = True) -> Entry:
    """Validate one entry mapping (from YAML, JSON or a form) and build an :class:`Entry`;
    raise on its first problem.  ``strict=False`` (entries already stored) accepts answer
    languages Kefu does not speak, so old data never stops a worker."""
    problems: list[FieldError] = []
    entry = _parse_entry(raw, where, problems, strict)
    if entry is None:
        raise KnowledgeError(problems[0])
    return entry


def _parse_entry(raw: Any, where: str, problems: list[FieldError], strict: bool = True) -> Entry | None:
    """The entry, or None with every problem of it appended to ``problems``."""
    if not isinstance(raw, Mapping):
        problems.append(FieldError(f"{where}: an entry must be a mapping with id, questions and answer"))
        return None
    found = len(problems)
    line = raw.get("__line__")
    line_no = line if isinstance(line, int) and not isinstance(line, bool) else None
    data = {k: v for k, v in raw.items() if k != "__line__"}
    entry_id = data.get("id")
    shown = repr(entry_id) if isinstance(entry_id, str | int) else type(entry_id).__name__
    shown = shown if len(shown) <= 130 else shown[:37] + "..."  # a valid id in full; never echo a huge value back
    label = f"{where} (id {shown}" + (f", line {line})" if line else ")")
    known_id = str(entry_id) if isinstance(entry_id, str | int) and not isinstance(entry_id, bool) else None

    def problem(field_name: str, message: str) -> None:
        problems.append(FieldError(message, field_name, known_id, line_no))

    unknown = sorted(set(data) - {"id", "questions", "answer", "tags", "enabled", "action"})
    if unknown:
        problem("unknown", f"{label}: unknown field(s) {', '.join(map(str, unknown))}")
    if entry_id is None or entry_id == "":
        problem("id", f"{label}: 'id' is required: up to 128 characters, no spaces or '/'")
    elif not isinstance(entry_id, str | int) or isinstance(entry_id, bool) or not ID_PATTERN.match(str(entry_id)):
        given = repr(str(entry_id))
        given = given + " " if len(given) <= 130 else ""  # never echo a huge value back (the label shows its start)
        problem("id", f"{label}: 'id' {given}is not a valid id: up to 128 characters, "
                        "no spaces or '/'")
    questions: tuple[str, ...] = ()
    try:
        questions = _strings(data.get("questions"), label, "questions")
        if not questions:
            problem("questions", f"{label}: 'questions' needs at least one question")
    except KnowledgeError as exc:
        problems.extend(FieldError(e.message, e.field, known_id, line_no) for e in exc.errors)
    action = data.get("action", "")
    if action is None or action == "":
        action = ""
    elif not isinstance(action, str) or not ACTION_PATTERN.match(action):
        problem("action", f"{label}: 'action' must be an action name such as action_order_status "
                        "(letters, digits, _ . -)")
        action = ""
    answer = data.get("answer")
    answers: dict[str, str] = {}
    if isinstance(answer, str) and answer.strip():
        answers = {"zh" if _looks_chinese(answer) else "en": answer.strip()}
    elif isinstance(answer, Mapping) and answer:
        for lang, text in answer.items():
            if lang == "__line__":
                continue
            if not isinstance(lang, str) or not isinstance(text, str) or not text.strip():
                problem("answer", f"{label}: 'answer.{lang}' must be a non-empty string")
            elif strict and lang not in LANGUAGES:
                problem("answer", f"{label}: 'answer.{lang}': unknown language {lang!r}; "
                                f"use {' or '.join(LANGUAGES)}")
            else:
                answers[lang] = text.strip()
    elif answer is not None and not (isinstance(answer, str | Mapping) and not answer):
        problem("answer", f"{label}: 'answer' must be a string or a mapping language → string")
    if not answers and not (action and answer is None) and len(problems) == found:
        problem("answer", f"{label}: 'answer' must be a string or a mapping language → string"
                        " (it may be left out only when the entry names an 'action')")
    tags: tuple[str, ...] = ()
    try:
        tags = _strings(data.get("tags", []), label, "tags")
    except KnowledgeError as exc:
        problems.extend(FieldError(e.message, e.field, known_id, line_no) for e in exc.errors)
    enabled = data.get("enabled", True)
    if not isinstance(enabled, bool):
        problem("enabled", f"{label}: 'enabled' must be true or false")
    if len(problems) > found:
        return None
    return Entry(str(entry_id), questions, answers, tags, enabled, action)


def normalized_question(text: str) -> str:
    r"""The form two questions share when they are "the same question" (case, spaces, end punctuation).
    ``split``/``join`` drops the same whitespace as ``re.sub(r"\s+", "")`` at a third of the cost
    (a save checks every question of the knowledge base: 150k at 20,000 entries)."""
    return "".join(text.casefold().split()).rstrip("?？。.!！~～")


def yaml_problem(exc: yaml.YAMLError) -> str:
    """PyYAML's several-line error as one line: what is wrong and where."""
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    return f"{where}{problem}"


def question_clashes(entry: Entry, others: Iterable[Entry]) -> list[str]:
    """One line per question of ``entry`` that another entry also has (both become ambiguous)."""
    return clashes_among(entry, ((other.id, other.questions) for other in others))


def clashes_among(entry: Entry, others: Iterable[tuple[str, Iterable[str]]]) -> list[str]:
    """:func:`question_clashes` against ``(entry id, questions)`` pairs: a save checks the stored
    documents' question lists without decoding each into an :class:`Entry`."""
    mine = {normalized_question(q): q for q in dict.fromkeys(entry.questions)}
    owners: dict[str, str] = {}
    for other_id, questions in others:
        if other_id == entry.id:
            continue
        for q in questions:
            key = normalized_question(q)
            if key in mine:
                owners.setdefault(key, other_id)
    return [f"question {q!r} is also a question of entry {owners[key]!r}; keep it in one entry, "
            "or the bot cannot tell them apart" for key, q in mine.items() if key in owners]


def check_kb_text(text: str, source: str = "<knowledge>") -> tuple[KnowledgeBase | None, list[str]]:
    """Every problem of a knowledge file, each naming the entry and its line: entries that do
    not validate, duplicate ids, and a question used by two entries (which makes both ambiguous)."""
    kb, problems = check_kb(text, source)
    return kb, [problem.message for problem in problems]


def check_kb(text: str, source: str = "<knowledge>") -> tuple[KnowledgeBase | None, list[FieldError]]:
    """:func:`check_kb_text` with structured problems (entry id, field and line of each)."""
    try:
        raw = load_yaml(text)
    except yaml.YAMLError as exc:
        return None, [FieldError(f"{source}: not valid YAML: {yaml_problem(exc)}")]
    except KnowledgeError as exc:
        return None, [FieldError(f"{source}: {exc}")]
    if raw is None:
        raw = []
    if isinstance(raw, Mapping) and "entries" in raw:
        raw = raw["entries"]
    if not isinstance(raw, list):
        return None, [FieldError(f"{source}: expected a YAML list of entries")]
    problems: list[FieldError] = []
    entries: list[Entry] = []
    ids: dict[str, tuple[int, object]] = {}
    questions: dict[str, tuple[str, object]] = {}
    for i, item in enumerate(raw):
        where = f"{source}: entry {i + 1}"
        entry = _parse_entry(item, where, problems)
        if entry is None:
            continue
        line = item.get("__line__") if isinstance(item, Mapping) else None
        line_no = line if isinstance(line, int) else None
        label = f"{where} (id {entry.id!r}" + (f", line {line})" if line else ")")
        if entry.id in ids:
            first, first_line = ids[entry.id]
            problems.append(FieldError(f"{label}: duplicate id {entry.id!r} (first used by entry {first}"
                                       + (f", line {first_line})" if first_line else ")"), "id", entry.id, line_no))
            continue
        ids[entry.id] = (i + 1, line)
        for question in dict.fromkeys(entry.questions):
            key = normalized_question(question)
            other = questions.get(key)
            if other is not None and other[0] != entry.id:
                problems.append(FieldError(f"{label}: question {question!r} is also a question of entry {other[0]!r}"
                                           + (f" (line {other[1]})" if other[1] else "")
                                           + "; keep it in one entry, or the bot cannot tell them apart",
                                           "questions", entry.id, line_no))
            elif other is None:
                questions[key] = (entry.id, line)
        entries.append(entry)
    if problems:
        return None, problems
    return KnowledgeBase(tuple(entries)), []


def parse_kb(text: str, source: str = "<knowledge>") -> KnowledgeBase:
    """Parse and validate a whole knowledge file; raise with every problem (one per line), build
    nothing."""
    kb, problems = check_kb(text, source)
    if kb is None:
        raise KnowledgeError(problems)
    return kb


def build_kb(entries: Iterable[Entry], source: str = "<knowledge>") -> KnowledgeBase:
    seen: set[str] = set()
    result = []
    for entry in entries:
        if entry.id in seen:
            raise KnowledgeError(FieldError(f"{source}: duplicate entry id {entry.id!r}", "id", entry.id))
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
