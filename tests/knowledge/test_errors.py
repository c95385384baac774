"""Validation errors are structured: each names its entry, field and line, so nothing has to read
the field back out of the message (an id that is itself a field name no longer confuses it)."""

from __future__ import annotations

import pytest

from knowledge.errors import FieldError, KnowledgeError, ValidationFailed, first_field
from knowledge.schema import check_kb, parse_entry, parse_kb
from knowledge.service import validate


def test_an_entry_error_names_entry_field_and_line() -> None:
    with pytest.raises(KnowledgeError) as caught:
        parse_kb("- id: ok\n  questions: [q]\n  answer: a\n- id: tags\n  questions: [q2]\n  answer: {zh: ''}\n")
    [error] = caught.value.errors
    assert (error.entry_id, error.field, error.line) == ("tags", "answer", 4)
    assert error.message == str(caught.value) and "'answer.zh' must be a non-empty string" in error.message
    assert ValidationFailed.of(caught.value).field == "answer"  # not "tags", the id in the label


def test_every_problem_of_a_file_is_structured() -> None:
    kb, problems = check_kb("- id: a\n  questions: [same]\n  answer: x\n"
                            "- id: a\n  questions: [q]\n  answer: y\n"
                            "- id: b\n  questions: ['Same?']\n  answer: z\n  colour: red\n"
                            "- id: c\n  questions: [other]\n  answer: w\n")
    assert kb is None
    assert [(p.entry_id, p.field, p.line) for p in problems] == [("a", "id", 4), ("b", "unknown", 7)]
    kb, problems = check_kb("- id: a\n  questions: [same]\n  answer: x\n- id: b\n  questions: ['Same?']\n  answer: z\n")
    assert [(p.entry_id, p.field, p.line) for p in problems] == [("b", "questions", 4)]


@pytest.mark.parametrize(("raw", "field"), [
    ({"id": "x", "questions": "q", "answer": "a", "tags": [{"a": 1}]}, "tags"),
    ({"id": "x", "questions": ["q"], "answer": "a", "action": "no spaces allowed"}, "action"),
    ({"id": "x", "questions": ["q"], "answer": "a", "extra": 1}, "unknown"),
    ({"questions": ["q"], "answer": "a"}, "id"),
    ("not a mapping", ""),
])
def test_the_field_of_each_kind_of_problem(raw: object, field: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        validate(raw)
    assert caught.value.field == field
    with pytest.raises(KnowledgeError) as plain:
        parse_entry(raw)
    assert plain.value.errors[0].field in (field, "")


def test_the_form_points_at_the_first_named_field() -> None:
    errors = [FieldError("whole file"), FieldError("x", "unknown"), FieldError("y", "questions")]
    assert first_field(errors) == "questions" and first_field(errors[:2]) == "unknown" and first_field([]) == ""
    failed = ValidationFailed([FieldError("row 3: bad", "answer", "e", None, 3)])
    assert failed.to_json() == {"error": "row 3: bad", "field": "answer", "row": 3}
    assert ValidationFailed("plain").to_json() == {"error": "plain", "field": ""}
