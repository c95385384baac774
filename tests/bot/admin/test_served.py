"""What the admin console waits for before saying "saved": the version every live worker answers
from (two runtimes on one store here; a stopped or silent worker stops counting)."""

from __future__ import annotations

from bot.admin.live import POLL_SECONDS, STALE_AFTER, KnowledgeSync
from bot.runtime import Runtime
from tests.bot.admin.conftest import Admin


async def test_status_lists_every_worker_and_the_version_all_of_them_serve(admin: Admin) -> None:
    headers = await admin.login()
    now = [1000.0]
    admin.console.api.clock = lambda: now[0]
    mine = KnowledgeSync(admin.runtime, clock=lambda: now[0])
    other_runtime = await Runtime.start(admin.runtime.config, redis=admin.runtime.store.redis)
    other = KnowledgeSync(other_runtime, clock=lambda: now[0])
    await mine.report()
    await other.report()
    status = (await admin.client.get("/api/admin/status")).json()
    version = status["version"]
    assert sorted(w["version"] for w in status["workers"]) == [version, version] and status["serving"] == version

    entry = (await admin.client.get("/api/admin/entries/refund-time")).json()["entry"]
    saved = await admin.client.put("/api/admin/entries/refund-time", headers=headers,
                                   json={**entry, "answer": {"zh": "当天到账", "en": "Same day"}})
    assert saved.status_code == 200
    await admin.runtime.reload_knowledge()
    await mine.report()  # this worker has it, the other has not reloaded yet: not "saved" everywhere
    status = (await admin.client.get("/api/admin/status")).json()
    assert status["version"] == version + 1 and status["serving"] == version
    await other_runtime.reload_knowledge()
    await other.report()
    assert (await admin.client.get("/api/admin/status")).json()["serving"] == version + 1

    # a worker that went silent (killed, cut off from Redis) no longer holds "saved" back
    await admin.client.put("/api/admin/entries/refund-time", headers=headers,
                           json={**entry, "answer": {"zh": "两天到账", "en": "Two days"}})
    await admin.runtime.reload_knowledge()
    now[0] += STALE_AFTER * POLL_SECONDS + 1
    await mine.report()
    status = (await admin.client.get("/api/admin/status")).json()
    assert [w["worker"] for w in status["workers"]] == [mine.worker] and status["serving"] == version + 2
    await mine.stop()  # a worker that stops takes itself off the list
    assert (await admin.client.get("/api/admin/status")).json()["workers"] == []


async def test_validate_shows_the_problems_and_warnings_that_saving_would(admin: Admin) -> None:
    headers = await admin.login()
    entry = (await admin.client.get("/api/admin/entries/refund-time")).json()["entry"]
    clash = {**entry, "questions": [*entry["questions"], "怎么退货"]}
    checked = (await admin.client.post("/api/admin/validate", headers=headers, json=clash)).json()
    assert checked["ok"] is False and checked["problems"] == [
        "question '怎么退货' is also a question of entry 'return-policy'; keep it in one entry, "
        "or the bot cannot tell them apart"]
    refused = await admin.client.put("/api/admin/entries/refund-time", headers=headers, json=clash)
    assert refused.status_code == 422 and refused.json()["field"] == "questions"
    assert (await admin.client.get("/api/admin/entries/refund-time")).json()["entry"] == entry

    half = {**entry, "answer": {**entry["answer"], "en": "Refunds arrive the same day."}}
    checked = (await admin.client.post("/api/admin/validate", headers=headers, json=half)).json()
    assert checked["ok"] is True and checked["warnings"] == [
        "只改了英文答案，中文答案没变 · The English answer changed but the Chinese one did not: "
        "check that it still agrees"]
    both = {**entry, "answer": {"zh": "当天到账。", "en": "Refunds arrive the same day."}}
    assert (await admin.client.post("/api/admin/validate", headers=headers, json=both)).json()["warnings"] == []
