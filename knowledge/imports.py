"""Import and export the knowledge base as YAML, CSV or XLSX, with a dry-run diff.

The spreadsheet layout is one row per entry: ``id, questions, answer_zh, answer_en, tags,
enabled, action``; several questions (or tags) share a cell, one per line or separated by
``|``.  Every row is validated with the same :func:`parse_entry` as every other write, and
the first bad row stops the import with its row number: an import is all-or-nothing.
"""

from __future__ import annotations

import csv
import io
import re
import zipfile
from collections.abc import Iterable, Sequence
from typing import Any

from knowledge.errors import FieldError, KnowledgeError, ValidationFailed
from knowledge.schema import Entry, KnowledgeBase, build_kb, dump_kb, parse_entry, parse_kb, question_clashes
from knowledge.service import changed_fields

FORMATS = ("yaml", "csv", "xlsx")
COLUMNS = ("id", "questions", "answer_zh", "answer_en", "tags", "enabled", "action")
_SPLIT = re.compile(r"\s*(?:\n|\|)\s*")
_TRUE = {"", "1", "true", "yes", "y", "是", "启用"}
_FALSE = {"0", "false", "no", "n", "否", "停用"}


MAX_ROWS = 20_000  # entries per import; a knowledge base is hundreds
MAX_COLUMNS = 32
MAX_UNZIPPED_BYTES = 50_000_000  # an XLSX of 20,000 rows is a few MB unzipped


def _check_zip(data: bytes, source: str) -> None:
    """Refuse a zip bomb before openpyxl inflates it: the declared sizes of its parts are summed."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            total = sum(info.file_size for info in archive.infolist())
    except (zipfile.BadZipFile, ValueError):
        raise ValidationFailed(f"{source}: not a readable XLSX workbook (not a zip file)") from None
    if total > MAX_UNZIPPED_BYTES:
        raise ValidationFailed(f"{source}: the workbook unpacks to {total:,} bytes; the limit is "
                               f"{MAX_UNZIPPED_BYTES:,}")


def format_of(filename: str, declared: str = "") -> str:
    fmt = (declared or filename.rsplit(".", 1)[-1]).lower()
    fmt = {"yml": "yaml"}.get(fmt, fmt)
    if fmt not in FORMATS:
        raise ValidationFailed(f"unknown import format {fmt!r}: use .yaml, .csv or .xlsx")
    return fmt


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")  # what spreadsheets run as a formula (OWASP CSV injection)


def neutralised(value: str) -> str:
    """A CSV cell that a spreadsheet shows as text: a leading ``'`` before a formula start
    (``=HYPERLINK(...)`` in a question a customer typed must not run on an admin's machine)."""
    return "'" + value if value.startswith(_FORMULA_START) else value


def _cell(value: Any) -> str:
    text = "" if value is None else str(value)
    if text.startswith("'") and text[1:].startswith(_FORMULA_START):
        text = text[1:]  # our own export's guard comes back off on import, so a round trip is exact
    return text.strip()


def _row_entry(row: dict[str, str], number: int) -> Entry:
    """One spreadsheet row → an entry; errors name the row (1 = the header)."""
    where = f"row {number}"
    missing = [c for c in ("id", "questions") if c not in row]
    if missing:
        raise ValidationFailed(f"{where}: missing column(s) {', '.join(missing)}; expected {', '.join(COLUMNS)}",
                               missing[0], number)
    enabled_text = _cell(row.get("enabled")).lower()
    if enabled_text not in _TRUE | _FALSE:
        raise ValidationFailed(f"{where}: 'enabled' must be true or false, got {enabled_text!r}", "enabled", number)
    answer = {lang: _cell(row.get(f"answer_{lang}")) for lang in ("zh", "en") if _cell(row.get(f"answer_{lang}"))}
    raw: dict[str, Any] = {
        "id": _cell(row.get("id")),
        "questions": [q for q in _SPLIT.split(_cell(row.get("questions"))) if q],
        "tags": [t for t in _SPLIT.split(_cell(row.get("tags"))) if t],
        "enabled": enabled_text not in _FALSE,
    }
    if answer:
        raw["answer"] = answer
    if _cell(row.get("action")):
        raw["action"] = _cell(row.get("action"))
    if not answer and not raw.get("action"):
        raise ValidationFailed(f"{where} (id {raw['id']!r}): 'answer_zh' or 'answer_en' is required",
                               "answer", number)
    try:
        return parse_entry(raw, where)
    except KnowledgeError as exc:
        raise ValidationFailed([FieldError(e.message, e.field, e.entry_id, e.line, number) for e in exc.errors],
                               row=number) from None


def _rows_to_kb(header: Sequence[str], rows: Iterable[tuple[int, Sequence[Any]]], source: str) -> KnowledgeBase:
    names = [_cell(h).lower() for h in header]
    entries: list[Entry] = []
    seen: dict[str, int] = {}
    for number, values in rows:
        if not any(_cell(v) for v in values):
            continue
        row = {name: _cell(values[i]) if i < len(values) else "" for i, name in enumerate(names) if name}
        entry = _row_entry(row, number)
        if entry.id in seen:
            raise ValidationFailed(f"row {number}: duplicate id {entry.id!r} (also on row {seen[entry.id]})",
                                   "id", number)
        seen[entry.id] = number
        clashes = question_clashes(entry, entries)  # a question on two rows makes both ambiguous
        if clashes:
            raise ValidationFailed(f"row {number} (id {entry.id!r}): {clashes[0]}", "questions", number)
        entries.append(entry)
    return build_kb(entries, source)


def parse_upload(data: bytes, fmt: str, source: str = "upload") -> KnowledgeBase:
    """Parse a whole file; raise :class:`ValidationFailed` (naming row or entry) on the first problem."""
    if fmt == "yaml":
        try:
            return parse_kb(data.decode("utf-8"), source)
        except UnicodeDecodeError:
            raise ValidationFailed(f"{source}: not UTF-8 text") from None
        except KnowledgeError as exc:
            raise ValidationFailed.of(exc) from None
    if fmt == "csv":
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise ValidationFailed(f"{source}: CSV must be UTF-8 text") from None
        reader = list(csv.reader(io.StringIO(text)))
        if not reader:
            return build_kb([], source)
        return _rows_to_kb(reader[0], ((i + 1, r) for i, r in enumerate(reader) if i > 0), source)
    if fmt == "xlsx":
        from openpyxl import load_workbook

        _check_zip(data, source)
        try:
            book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
        except Exception as exc:
            raise ValidationFailed(f"{source}: not a readable XLSX workbook ({exc.__class__.__name__})") from None
        sheet = book.worksheets[0]
        # The sheet's declared dimension (A1:XFD1048576 costs nothing to write) would pad every row to
        # 16,384 cells: read only the cells really there, at most MAX_COLUMNS wide and MAX_ROWS long.
        sheet.reset_dimensions()
        rows: list[tuple[Any, ...]] = []
        for row in sheet.iter_rows(values_only=True, max_col=MAX_COLUMNS):
            if len(rows) > MAX_ROWS:
                book.close()
                raise ValidationFailed(f"{source}: more than {MAX_ROWS} rows; split the file")
            rows.append(row)
        book.close()
        if not rows:
            return build_kb([], source)
        return _rows_to_kb([_cell(h) for h in rows[0]],
                           ((i + 1, list(r)) for i, r in enumerate(rows) if i > 0), source)
    raise ValidationFailed(f"unknown import format {fmt!r}")


def _row_of(entry: Entry) -> list[str]:
    return [entry.id, "\n".join(entry.questions), entry.answer.get("zh", ""), entry.answer.get("en", ""),
            "\n".join(entry.tags), "true" if entry.enabled else "false", entry.action]


def export(kb: KnowledgeBase, fmt: str) -> bytes:
    if fmt == "yaml":
        return dump_kb(kb).encode("utf-8")
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(COLUMNS)
        writer.writerows([neutralised(cell) for cell in _row_of(e)] for e in kb.entries)
        return out.getvalue().encode("utf-8")
    if fmt == "xlsx":
        from openpyxl import Workbook

        book = Workbook()
        sheet = book.active
        assert sheet is not None
        sheet.title = "knowledge"
        sheet.append(list(COLUMNS))
        for entry in kb.entries:
            sheet.append(_row_of(entry))
        for row in sheet.iter_rows(min_row=2):
            for cell in row:  # openpyxl stores "=..." as a live formula; these are texts
                if isinstance(cell.value, str) and cell.value.startswith(_FORMULA_START):
                    cell.data_type = "s"
        buffer = io.BytesIO()
        book.save(buffer)
        return buffer.getvalue()
    raise ValidationFailed(f"unknown export format {fmt!r}")


MEDIA_TYPES = {"yaml": "application/yaml; charset=utf-8", "csv": "text/csv; charset=utf-8",
               "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}


def diff(current: Sequence[Entry], incoming: KnowledgeBase, *, remove_missing: bool = True) -> dict[str, Any]:
    """What importing ``incoming`` would add, change and (in replace mode) remove."""
    now = {e.id: e for e in current}
    added = [e.to_json() for e in incoming.entries if e.id not in now]
    changed = []
    for entry in incoming.entries:
        old = now.get(entry.id)
        if old is not None and old != entry:
            changed.append({"id": entry.id, "fields": changed_fields(old.to_json(), entry.to_json()),
                            "before": old.to_json(), "after": entry.to_json()})
    removed = [e.to_json() for e in current if incoming.get(e.id) is None] if remove_missing else []
    unchanged = sum(1 for e in incoming.entries if now.get(e.id) == e)
    return {"added": added, "changed": changed, "removed": removed, "unchanged": unchanged}


def import_changes(current: Sequence[Entry], incoming: KnowledgeBase, *,
                   remove_missing: bool = True) -> dict[str, Entry | None]:
    now = {e.id: e for e in current}
    changes: dict[str, Entry | None] = {e.id: e for e in incoming.entries if now.get(e.id) != e}
    if remove_missing:
        changes.update({e.id: None for e in current if incoming.get(e.id) is None})
    return changes


def removal_limit(stored: int) -> int:
    """How many stored entries one import may remove without ``--replace-all``/``replace_all=1``:
    a tenth of them, at least 3 (so a small KB can still drop an entry or two)."""
    return max(3, stored // 10)


def removal_problem(source: str, current: Sequence[Entry], incoming: KnowledgeBase, override: str) -> str | None:
    """Why importing ``incoming`` over ``current`` needs ``override`` (None: it does not).

    An empty file, or one that drops more than :func:`removal_limit` entries, is almost always
    the wrong file (an export cut short, a sheet of only new entries), not a wish to delete."""
    removed = [e.id for e in current if incoming.get(e.id) is None]
    if not current or (len(incoming) and len(removed) <= removal_limit(len(current))):
        return None
    shown = ", ".join(removed[:8]) + (f" and {len(removed) - 8} more" if len(removed) > 8 else "")
    what = "has no entries" if not len(incoming) else f"has {len(incoming)} entries"
    return (f"{source} {what}: importing it would remove {len(removed)} of the {len(current)} stored entries "
            f"({shown}); nothing was changed. Check the file, or add {override} to remove them "
            "(kefu kb save FILE adds and updates without removing)")
