"""The knowledge base's domain errors, with structured field errors.

Every problem of an entry is a :class:`FieldError` that *says* which entry, field, line or
spreadsheet row it is about, so the admin form points at the field without reading the
message.  None of these types knows HTTP: ``bot/server.py`` maps each to its status, and the
CLI prints the message.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

FIELDS = ("id", "questions", "answer", "tags", "enabled", "action")


@dataclass(frozen=True)
class FieldError:
    """One problem: ``field`` is an entry field, ``"unknown"`` (a field the format does not
    have) or ``""`` (the whole entry or file); ``line`` is the YAML line, ``row`` the sheet row."""

    message: str
    field: str = ""
    entry_id: str | None = None
    line: int | None = None
    row: int | None = None

    def __str__(self) -> str:
        return self.message


def first_field(errors: Sequence[FieldError]) -> str:
    """The field the form should point at: the first error's that names an entry field, else
    ``"unknown"`` when a field is unknown, else ``""``."""
    for error in errors:
        if error.field in FIELDS:
            return error.field
    return "unknown" if any(error.field == "unknown" for error in errors) else ""


class KnowledgeError(ValueError):
    """A knowledge file, entry or change is not acceptable; the message says where and why
    (one line per problem), ``errors`` says the same in structured form."""

    def __init__(self, problem: str | FieldError | Sequence[FieldError]) -> None:
        if isinstance(problem, str):
            problem = FieldError(problem)
        errors = (problem,) if isinstance(problem, FieldError) else tuple(problem)
        super().__init__("\n".join(e.message for e in errors))
        self.errors: tuple[FieldError, ...] = errors

    def to_json(self) -> dict[str, Any]:
        return {"error": str(self)}


class ValidationFailed(KnowledgeError):
    """An entry, file or edit request failed validation; ``field`` and ``row`` say where, for the form."""

    def __init__(self, problem: str | FieldError | Sequence[FieldError], field: str | None = None,
                 row: int | None = None) -> None:
        super().__init__(problem)
        self.field = first_field(self.errors) if field is None else field
        self.row = row if row is not None else next((e.row for e in self.errors if e.row is not None), None)

    @classmethod
    def of(cls, error: KnowledgeError, row: int | None = None) -> ValidationFailed:
        """A parse error as a validation failure, keeping its structured errors."""
        return cls(error.errors, row=row)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"error": str(self), "field": self.field}
        if self.row is not None:
            data["row"] = self.row
        return data


class EntryNotFound(KnowledgeError):
    """No entry has this id (or it has no history to roll back)."""


class VersionNotFound(KnowledgeError):
    """The knowledge base never had this version."""


class VersionConflict(KnowledgeError):
    """The version asked for cannot be reached: it is older than the kept history."""


class KnowledgeLocked(KnowledgeError):
    """Another change held the write lock for longer than a write may wait."""
