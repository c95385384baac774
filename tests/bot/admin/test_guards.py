"""Destructive admin actions are guarded and say how to undo them: an import that would remove
many entries (or all) is refused until confirmed, and every write names the version to roll back to."""

from __future__ import annotations

from tests.bot.admin.conftest import Admin


async def test_a_replace_import_that_drops_most_entries_is_refused_until_confirmed(admin: Admin) -> None:
    headers = await admin.login()
    before = (await admin.client.get("/api/admin/entries")).json()
    one = "- id: only-one\n  questions: [只有一条]\n  answer: {zh: 一条, en: one}\n"
    refused = await admin.client.post("/api/admin/import?format=yaml&filename=one.yaml", headers=headers,
                                      content=one.encode())
    assert refused.status_code == 409
    stored = len(before["entries"])
    assert refused.json()["error"].startswith(
        f"one.yaml has 1 entries: importing it would remove {stored} of the {stored} stored entries (")
    assert refused.json()["needs"] == "replace_all" and len(refused.json()["removed"]) == stored
    assert (await admin.client.get("/api/admin/entries")).json() == before  # nothing was changed
    empty = await admin.client.post("/api/admin/import?format=yaml&filename=empty.yaml", headers=headers, content=b"")
    assert empty.status_code == 409 and empty.json()["error"].startswith("empty.yaml has no entries: ")

    merged = await admin.client.post("/api/admin/import?format=yaml&mode=merge", headers=headers, content=one.encode())
    assert merged.status_code == 200  # adding never needs the confirmation
    version = merged.json()["version"]
    assert merged.json()["undo_version"] == version - 1
    forced = await admin.client.post("/api/admin/import?format=yaml&replace_all=1", headers=headers,
                                     content=one.encode())
    assert forced.status_code == 200, forced.text
    assert forced.json()["undo_version"] == version
    assert [e["id"] for e in (await admin.client.get("/api/admin/entries")).json()["entries"]] == ["only-one"]
    back = await admin.client.post("/api/admin/rollback", headers=headers, json={"version": version})
    assert back.status_code == 200 and back.json()["undo_version"] == forced.json()["version"]
    assert len((await admin.client.get("/api/admin/entries")).json()["entries"]) == stored + 1


async def test_every_write_names_the_version_that_undoes_it(admin: Admin) -> None:
    headers = await admin.login()
    deleted = await admin.client.delete("/api/admin/entries/refund-time", headers=headers)
    assert deleted.status_code == 200
    assert deleted.json()["undo_version"] == deleted.json()["version"] - 1
    undo = await admin.client.post("/api/admin/rollback", headers=headers, json={"version": deleted.json()["undo_version"]})
    assert undo.status_code == 200
    assert (await admin.client.get("/api/admin/entries/refund-time")).status_code == 200


async def test_a_question_on_two_csv_rows_names_the_row_and_imports_nothing(admin: Admin) -> None:
    headers = await admin.login()
    version = (await admin.client.get("/api/admin/status")).json()["version"]
    csv = ("id,questions,answer_zh,answer_en\n"
           "gift-card,礼品卡怎么用,在结算页选择礼品卡。,Pick it at checkout.\n"
           "gift-card-2,礼品卡怎么用？|礼品卡能退吗,不能退。,No refunds.\n")
    r = await admin.client.post("/api/admin/import?format=csv&mode=merge", headers=headers, content=csv.encode())
    assert r.status_code == 422
    assert r.json() == {"error": "row 3 (id 'gift-card-2'): question '礼品卡怎么用？' is also a question of entry "
                                 "'gift-card'; keep it in one entry, or the bot cannot tell them apart",
                        "field": "questions", "row": 3}
    assert (await admin.client.get("/api/admin/status")).json()["version"] == version
