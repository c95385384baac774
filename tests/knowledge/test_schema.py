from __future__ import annotations

from pathlib import Path

import pytest

from knowledge.schema import KnowledgeError, dump_kb, load_kb, parse_kb

GOOD = """
- id: return-policy
  tags: [after-sales]
  questions:
    - 怎么退货
    - How do I return an item?
  answer:
    zh: 签收后7天内可退货。
    en: You can return within 7 days.
- id: hours
  questions:
    - 几点上班
  answer: 客服9:00-21:00在线。
"""


def test_parse_good_file() -> None:
    kb = parse_kb(GOOD)
    assert [e.id for e in kb] == ["return-policy", "hours"]
    entry = kb.get("return-policy")
    assert entry is not None
    assert entry.title == "怎么退货"
    assert entry.answer_in("en") == "You can return within 7 days."
    assert entry.title_in("en") == "How do I return an item?"
    hours = kb.get("hours")
    assert hours is not None and hours.answer == {"zh": "客服9:00-21:00在线。"}
    assert hours.answer_in("en") == "客服9:00-21:00在线。"  # falls back to the language it has


def test_round_trip_through_dump() -> None:
    kb = parse_kb(GOOD)
    again = parse_kb(dump_kb(kb))
    assert again == kb
    assert again.content_hash() == kb.content_hash()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("- id: a\n  questions: [q]\n", r"entry 1 \(id 'a', line 1\): 'answer' must be"),
        ("- id: a\n  answer: x\n", r"'questions' must be a list"),
        ("- id: a\n  questions: []\n  answer: x\n", r"needs at least one question"),
        ("- questions: [q]\n  answer: x\n", r"'id' is required"),
        ("- id: a b\n  questions: [q]\n  answer: x\n", r"'id' 'a b' is not a valid id"),
        ("- questions: [q]\n  answer: x\n", r"'id' is required"),
        ("- id: a\n  questions: [q]\n  answer: x\n- id: a\n  questions: [r]\n  answer: y\n",
         r"entry 2 \(id 'a', line 4\): duplicate id 'a' \(first used by entry 1, line 1\)"),
        ("- id: a\n  questions: [q]\n  answer: x\n  colour: red\n", "unknown field"),
        ("- id: a\n  questions: [q]\n  answer: {zh: ''}\n", r"'answer.zh' must be a non-empty string"),
        ("id: a\n", "expected a YAML list"),
        ("- id: [\n", "not valid YAML"),
        ("- id: ok\n  questions: [q]\n  answer: x\n- 42\n", r"entry 2: an entry must be a mapping"),
    ],
)
def test_errors_name_the_entry(text: str, message: str) -> None:
    with pytest.raises(KnowledgeError, match=message):
        parse_kb(text, "faq.yaml")


def test_error_names_the_line_of_a_later_entry() -> None:
    text = GOOD + "- id: broken\n  questions: [q]\n"
    with pytest.raises(KnowledgeError, match=r"entry 3 \(id 'broken', line 14\)"):
        parse_kb(text)


def test_shipped_default_faq_is_rich_and_bilingual() -> None:
    kb = load_kb(Path(__file__).resolve().parents[2] / "knowledge" / "default-faq.yaml")
    assert len(kb) >= 30
    for entry in kb:
        assert {"zh", "en"} <= set(entry.answer), entry.id
        assert len(entry.questions) >= 3, entry.id
        assert any(q.isascii() for q in entry.questions), entry.id
        assert any(not q.isascii() for q in entry.questions), entry.id


def test_evaluation_kbs_load(shared_data: Path) -> None:
    assert len(load_kb(shared_data / "eval" / "shop-kb.yaml")) == 40
    assert load_kb(shared_data / "public" / "clinc150" / "kb.yaml").phrasing_count() == 15000


def test_the_fast_yaml_loader_keeps_lines_and_still_refuses_aliases() -> None:
    from knowledge.schema import load_yaml

    text = "- id: qa\n  questions: [Q&A time?]\n  answer: 'R&D'\n- id: b\n  questions: [x]\n  answer: y\n"
    assert [e["__line__"] for e in load_yaml(text)] == [1, 4]
    assert parse_kb(text).get("qa") is not None
    bomb = "- &a {id: a, questions: [x], answer: y}\n- *a\n"
    with pytest.raises(KnowledgeError, match="line 2: YAML anchors and aliases"):
        load_yaml(bomb)
