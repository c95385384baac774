"""The admin API as the console and scripts use it: permissions, live edits answered by the chat,
rollback, the test box, imports with dry runs, unanswered questions and the dashboard."""

from __future__ import annotations

import io
import time

import pytest
from openpyxl import Workbook, load_workbook

from bot import keys
from bot.admin.openapi import OPENAPI
from bot.admin.recorder import day_of
from tests.bot.admin.conftest import PASSWORD, Admin

NEW_ANSWER = {"zh": "退款今天就到账，最快5分钟。", "en": "Refunds now arrive the same day."}


async def test_anonymous_is_401_an_agent_is_403_and_writes_need_csrf(admin: Admin) -> None:
    c = admin.client
    assert (await c.get("/api/admin/entries")).status_code == 401
    assert (await c.put("/api/admin/entries/refund-time", json={})).status_code == 401
    token = await admin.login("li")  # an agent
    for method, path in (("GET", "/api/admin/entries"), ("PUT", "/api/admin/entries/refund-time"),
                         ("POST", "/api/admin/import?format=csv"), ("GET", "/api/admin/dashboard")):
        r = await c.request(method, path, headers=token, json={"id": "refund-time"})
        assert r.status_code == 403, (method, path, r.text)
    token = await admin.login("boss")
    body = {"id": "refund-time", "questions": ["退款多久到账"], "answer": NEW_ANSWER}
    forged = await c.put("/api/admin/entries/refund-time", json=body)
    assert forged.status_code == 403 and "CSRF" in forged.json()["error"]
    assert (await c.put("/api/admin/entries/refund-time", json=body, headers=token)).status_code == 200
    assert (await c.get("/api/admin/openapi.json")).status_code == 200  # public


async def test_bearer_token_of_an_admin_works_without_csrf(admin: Admin) -> None:
    assert admin.console.api is not None
    token = await admin.console.api.access.directory.issue_token("boss")
    r = await admin.client.get("/api/admin/entries?q=退款", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200 and any(e["id"] == "refund-time" for e in r.json()["entries"])


async def test_edit_is_answered_in_chat_after_reload_and_rolled_back(admin: Admin) -> None:
    before = await admin.chat("退款多久到账", "cust-a")
    assert "原路退回" in before
    headers = await admin.login()
    entry = (await admin.client.get("/api/admin/entries/refund-time")).json()["entry"]
    r = await admin.client.put("/api/admin/entries/refund-time", headers=headers,
                               json={**entry, "answer": NEW_ANSWER})
    assert r.status_code == 200, r.text
    edited = r.json()["version"]
    assert r.json()["changes"][0]["fields"] == ["answer"] and r.json()["changes"][0]["who"] == "boss"
    assert await admin.runtime.reload_knowledge()
    assert admin.runtime.knowledge.version == edited
    assert "最快5分钟" in await admin.chat("退款多久到账", "cust-b")

    history = (await admin.client.get("/api/admin/entries/refund-time/history")).json()["history"]
    assert [h["version"] for h in history] == [edited]
    r = await admin.client.post("/api/admin/entries/refund-time/rollback", headers=headers,
                                json={"version": edited - 1})
    assert r.status_code == 200, r.text
    await admin.runtime.reload_knowledge()
    assert "原路退回" in await admin.chat("退款多久到账", "cust-c")


async def test_field_errors_come_back_with_the_field(admin: Admin) -> None:
    headers = await admin.login()
    r = await admin.client.post("/api/admin/entries", headers=headers,
                                json={"id": "gift-card", "questions": ["礼品卡怎么用"], "answer": {"zh": " "}})
    assert r.status_code == 422 and r.json()["field"] == "answer" and "answer.zh" in r.json()["error"]
    r = await admin.client.put("/api/admin/entries/refund-time", headers=headers,
                               json={"id": "other", "questions": ["q"], "answer": "a"})
    assert r.status_code == 422 and r.json()["field"] == "id"
    assert (await admin.client.get("/api/admin/entries/gift-card")).status_code == 404


async def test_try_it_shows_decision_candidates_and_reason(admin: Admin) -> None:
    await admin.login()
    r = await admin.client.post("/api/admin/try", headers=await admin.login(), json={"text": "退款多久到账"})
    body = r.json()
    assert body["decision"]["action"] == "answer" and body["decision"]["entry_id"] == "refund-time"
    assert body["decision"]["candidates"][0]["entry_id"] == "refund-time"
    assert 0 < body["decision"]["candidates"][0]["score"] <= 1 and body["replies"]
    complaint = (await admin.client.post("/api/admin/try", headers=await admin.login(),
                                         json={"text": "我要投诉，太差劲了"})).json()["decision"]
    assert complaint["action"] == "handoff" and complaint["reason"]


CSV_GOOD = ("id,questions,answer_zh,answer_en,tags,enabled\n"
            "gift-card,礼品卡怎么用|How do I use a gift card?,在结算页选择礼品卡。,Pick the gift card at checkout.,payment,true\n")
CSV_BAD = CSV_GOOD + "broken row,怎么开发票,,,,\n"


async def test_csv_import_with_a_bad_row_names_it_and_imports_nothing(admin: Admin) -> None:
    headers = await admin.login()
    version = (await admin.client.get("/api/admin/status")).json()["version"]
    r = await admin.client.post("/api/admin/import?format=csv&mode=merge", headers=headers, content=CSV_BAD.encode())
    assert r.status_code == 422 and r.json()["row"] == 3 and "row 3" in r.json()["error"]
    assert (await admin.client.get("/api/admin/status")).json()["version"] == version
    assert (await admin.client.get("/api/admin/entries/gift-card")).status_code == 404

    dry = await admin.client.post("/api/admin/import?format=csv&mode=merge&dry_run=1", headers=headers,
                                  content=CSV_GOOD.encode())
    assert dry.json()["dry_run"] and [e["id"] for e in dry.json()["added"]] == ["gift-card"]
    assert dry.json()["removed"] == [] and (await admin.client.get("/api/admin/entries/gift-card")).status_code == 404
    replace = await admin.client.post("/api/admin/import?format=csv&dry_run=1", headers=headers,
                                      content=CSV_GOOD.encode())
    assert len(replace.json()["removed"]) == len(admin.runtime.knowledge.kb)  # replace mode would remove the rest
    done = await admin.client.post("/api/admin/import?format=csv&mode=merge", headers=headers, content=CSV_GOOD.encode())
    assert done.status_code == 200 and done.json()["version"] == version + 1
    entry = (await admin.client.get("/api/admin/entries/gift-card")).json()["entry"]
    assert entry["questions"] == ["礼品卡怎么用", "How do I use a gift card?"] and entry["tags"] == ["payment"]
    await admin.runtime.reload_knowledge()
    assert "礼品卡" in await admin.chat("礼品卡怎么用")


async def test_xlsx_and_yaml_round_trip(admin: Admin) -> None:
    headers = await admin.login()
    exported = await admin.client.get("/api/admin/export?format=xlsx")
    assert exported.status_code == 200
    book = load_workbook(io.BytesIO(exported.content))
    rows = list(book.worksheets[0].iter_rows(values_only=True))
    assert rows[0][:4] == ("id", "questions", "answer_zh", "answer_en") and len(rows) == len(admin.runtime.knowledge.kb) + 1
    same = await admin.client.post("/api/admin/import?format=xlsx&dry_run=1", headers=headers, content=exported.content)
    assert same.json()["added"] == same.json()["changed"] == same.json()["removed"] == []
    # an edited spreadsheet shows exactly the changed entry
    out = Workbook()
    sheet = out.active
    assert sheet is not None
    for row in rows:
        sheet.append(list(row))
    sheet.cell(row=2, column=3, value="改过的答案")
    buffer = io.BytesIO()
    out.save(buffer)
    changed = await admin.client.post("/api/admin/import?format=xlsx&dry_run=1", headers=headers,
                                      content=buffer.getvalue())
    assert [c["id"] for c in changed.json()["changed"]] == [rows[1][0]] and changed.json()["changed"][0]["fields"] == ["answer"]
    yaml_text = (await admin.client.get("/api/admin/export?format=yaml")).content
    again = await admin.client.post("/api/admin/import?format=yaml&dry_run=1", headers=headers, content=yaml_text)
    assert again.json()["unchanged"] == len(admin.runtime.knowledge.kb)


async def test_unanswered_questions_cluster_and_become_knowledge(admin: Admin) -> None:
    for i, text in enumerate(["礼品卡怎么用", "礼品卡怎么使用", "礼品卡如何用", "你们卖不卖飞机"]):
        await admin.chat(text, f"cust-{i}")
    headers = await admin.login()
    data = (await admin.client.get("/api/admin/unanswered")).json()
    assert data["total"] >= 4
    cluster = data["clusters"][0]
    assert cluster["count"] == 3 and {p["text"] for p in cluster["phrasings"]} == {"礼品卡怎么用", "礼品卡怎么使用", "礼品卡如何用"}
    questions = [p["text"] for p in cluster["phrasings"]]

    preview = (await admin.client.post("/api/admin/preview", headers=headers,
                                       json={"add_questions": {"entry_id": "payment-methods", "questions": questions}})).json()
    assert preview["replayed"] >= 4
    assert {c["text"] for c in preview["changed"]} >= set(questions)
    assert all(c["after"]["entry_id"] == "payment-methods" for c in preview["changed"] if c["text"] in questions)

    applied = await admin.client.post("/api/admin/unanswered/apply", headers=headers,
                                      json={"entry_id": "payment-methods", "questions": questions})
    assert applied.status_code == 200 and applied.json()["resolved"] == 3
    left = (await admin.client.get("/api/admin/unanswered")).json()
    assert all(c["label"] != "礼品卡怎么用" for c in left["clusters"])
    await admin.runtime.reload_knowledge()
    reply = await admin.chat("礼品卡怎么用", "cust-new")
    entry = admin.runtime.knowledge.kb.get("payment-methods")
    assert entry is not None and entry.answer["zh"][:10] in reply

    draft = (await admin.client.post("/api/admin/unanswered/draft", headers=headers,
                                     json={"questions": ["你们卖不卖飞机"]})).json()["entry"]
    assert draft["questions"] == ["你们卖不卖飞机"] and draft["id"]
    blank = await admin.client.post("/api/admin/unanswered/draft", headers=headers, json={"questions": [" "]})
    assert blank.status_code == 400  # nothing to draft from: a clear 400, not a 500


async def test_dashboard_counts_and_exports_csv(admin: Admin) -> None:
    await admin.chat("退款多久到账", "d-1")
    await admin.chat("怎么退货", "d-1")
    await admin.chat("我要投诉，太差劲了", "d-2")
    await admin.login()
    report = (await admin.client.get("/api/admin/dashboard?period=7d")).json()
    totals = report["totals"]
    assert totals["conversations"] == 2 and totals["handoffs"] == 1 and totals["handoff_rate"] == 0.5
    assert totals["automatic_resolution_rate"] == 0.5 and len(report["daily"]) == 7
    assert report["daily"][-1]["conversations"] == 2
    assert sum(report["handoff_reasons"].values()) == 1
    assert {e["entry_id"] for e in report["top_entries"]} >= {"refund-time", "return-policy"}
    csv_text = (await admin.client.get("/api/admin/dashboard.csv?period=30d")).text
    assert csv_text.startswith("day,conversations") and "handoff_rate,0.5" in csv_text


async def test_a_broken_statistic_never_fails_the_customers_turn(admin: Admin,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    """The counters ride with the turn's last Redis call; a key of the wrong type there is logged,
    the customer is still answered and the conversation is unlocked for the next message."""
    await admin.runtime.store.redis.set(keys.admin_metrics(day_of(time.time())), "not a hash")
    assert "退款" in await admin.chat("退款多久到账", "broken-stats")
    assert "failed" in caplog.text and "WRONGTYPE" in caplog.text
    assert "退货" in await admin.chat("怎么退货", "broken-stats")


def test_openapi_describes_every_admin_route() -> None:
    from starlette.routing import Route

    from bot.admin.api import AdminApi

    api = AdminApi.__new__(AdminApi)
    for route in api.routes():
        assert isinstance(route, Route)
        assert route.path in OPENAPI["paths"], route.path
        for method in route.methods or ():
            if method != "HEAD":
                assert method.lower() in OPENAPI["paths"][route.path], (method, route.path)


@pytest.mark.parametrize("period,days", [("7d", 7), ("30d", 30), ("3", 3)])
async def test_dashboard_periods(admin: Admin, period: str, days: int) -> None:
    await admin.login()
    assert len((await admin.client.get(f"/api/admin/dashboard?period={period}")).json()["days"]) == days


_ = PASSWORD


async def test_thumbs_down_on_an_answer_joins_the_unanswered_questions(admin: Admin) -> None:
    await admin.chat("退款多久到账", "thumbs")
    session = "session-thumbs"
    vote = await admin.client.post("/api/feedback", json={"session": session, "helpful": False})
    assert vote.status_code == 200 and vote.json() == {"recorded": True}
    again = await admin.client.post("/api/feedback", json={"session": session, "helpful": False})
    assert again.json() == {"recorded": False}  # one vote per answer
    assert (await admin.client.post("/api/feedback", json={"session": "nobody-here", "helpful": False})).status_code == 404
    assert (await admin.client.post("/api/feedback", json={"session": session, "helpful": "no"})).status_code == 400
    await admin.login()
    clusters = (await admin.client.get("/api/admin/unanswered")).json()["clusters"]
    [mine] = [c for c in clusters if c["label"] == "退款多久到账"]
    assert mine["reasons"] == {"thumbs_down": 1} and mine["suggested_entry"] == "refund-time"
