"""Hostile knowledge files an admin might be tricked into importing: a YAML alias bomb, an XLSX
that declares a sheet of 17 billion cells, a zip bomb.  Each is refused or read at its real size."""

from __future__ import annotations

import asyncio
import io
import re
import zipfile

import httpx
import pytest
from openpyxl import Workbook

from knowledge import imports
from knowledge.errors import ValidationFailed
from tests.bot.security.conftest import PASSWORD, Served
from tests.loop import portal


def alias_bomb(levels: int = 9) -> str:
    lines = ['- id: "a"', '  questions: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, levels):
        lines.append(f"  q{i}: &l{i} [{', '.join(f'*l{i - 1}' for _ in range(9))}]")
    lines.append(f"  id2: *l{levels - 1}")
    return "\n".join(lines) + "\n"


def test_a_yaml_alias_bomb_gets_a_short_error(served: Served) -> None:
    bomb = alias_bomb()
    assert len(bomb) < 600
    r = served.client.post("/api/admin/import", params={"format": "yaml", "dry_run": "1"},
                           headers=served.login(), content=bomb.encode())
    assert r.status_code == 422 and len(r.content) < 1000
    assert "aliases" in r.json()["error"] and "line 3" in r.json()["error"]


def test_a_huge_entry_id_is_not_echoed_back() -> None:
    with pytest.raises(ValidationFailed) as caught:
        imports.parse_upload(("- id: " + "x" * 100_000 + "\n  questions: [a]\n  bad: 1\n").encode(), "yaml")
    assert len(str(caught.value)) < 300


def xlsx(rows: int, dimension: str = "") -> bytes:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(list(imports.COLUMNS))
    for i in range(rows):
        sheet.append([f"entry-{i}", f"问题{i}", f"答案{i}", "", "", "true", ""])
    buffer = io.BytesIO()
    book.save(buffer)
    if not dimension:
        return buffer.getvalue()
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(buffer.getvalue())) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            data = src.read(info.filename)
            if info.filename == "xl/worksheets/sheet1.xml":
                data = re.sub(rb'<dimension ref="[^"]*" ?/>', f'<dimension ref="{dimension}"/>'.encode(), data)
            dst.writestr(info, data)
    return out.getvalue()


def test_a_declared_dimension_of_17_billion_cells_is_ignored(served: Served) -> None:
    data = xlsx(2000, "A1:XFD1048576")
    r = served.client.post("/api/admin/import", params={"format": "xlsx", "dry_run": "1"},
                           headers=served.login(), content=data)
    assert r.status_code == 200, r.text
    assert len(r.json()["added"]) == 2000


def test_too_many_rows_and_zip_bombs_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(imports, "MAX_ROWS", 50)
    with pytest.raises(ValidationFailed, match="more than 50 rows"):
        imports.parse_upload(xlsx(60), "xlsx")
    bomb = io.BytesIO()
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("xl/worksheets/sheet1.xml", b"\0" * (imports.MAX_UNZIPPED_BYTES + 1))
    assert len(bomb.getvalue()) < 100_000
    with pytest.raises(ValidationFailed, match="unpacks to"):
        imports.parse_upload(bomb.getvalue(), "xlsx")


def test_an_import_is_parsed_off_the_event_loop(served: Served) -> None:
    """While a 3,000-row workbook is parsed, the worker's loop keeps serving (ticks counted on it)."""
    data = xlsx(3000, "A1:XFD1048576")
    app = served.client.app

    async def import_while_ticking() -> tuple[int, int]:
        ticks = 0
        done = asyncio.Event()

        async def ticker() -> None:
            nonlocal ticks
            while not done.is_set():
                ticks += 1
                await asyncio.sleep(0)

        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1:8080") as c:
            login = await c.post("/api/agent/login", json={"name": "boss", "password": PASSWORD})
            task = asyncio.create_task(ticker())
            r = await c.post("/api/admin/import", params={"format": "xlsx", "dry_run": "1"}, content=data,
                             headers={"x-csrf-token": login.json()["csrf"]})
            done.set()
            await task
        return r.status_code, ticks

    status, ticks = portal(served.client).call(import_while_ticking)
    assert status == 200 and ticks > 500  # parsed on the loop, it would turn a handful of times
