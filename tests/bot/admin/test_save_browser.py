"""The admin console, clicked in a real browser on a real ``kefu serve``: problems and warnings are
shown before saving, "saved" is said only once every worker answers with the new version, and
destructive actions name the version that undoes them (an import that would remove most entries
asks first)."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Dialog, expect

from tests.bot.admin.test_admin_browser import Served, ask, served, shown_version

pytestmark = pytest.mark.browser
__all__ = ["served"]  # the fixture


def test_warnings_and_problems_come_before_saving_and_saved_means_answered(served: Served, tmp_path: Path) -> None:
    customer = served.customer()
    admin = served.admin()
    admin.fill("#search", "退款多久")
    admin.locator('.entry[data-id="refund-time"]').click()
    expect(admin.locator("#f-id")).to_have_value("refund-time")
    version = shown_version(admin)

    # only the Chinese answer changes: a warning, nothing saved; a second click saves
    admin.fill("#f-answer-zh", "退款当天到账。")
    admin.click("#save")
    expect(admin.locator("#editor-error")).to_contain_text(
        "只改了中文答案，英文答案没变 · The Chinese answer changed but the English one did not")
    expect(admin.locator("#editor-error")).to_contain_text("Click Save again to save anyway")
    assert httpx.get(served.base + "/healthz").json()["knowledge_version"] == version
    admin.click("#save")
    expect(admin.locator("#saved")).to_have_text(re.compile(
        rf"^已保存 Saved · version {version + 1} · 所有 1 个实例已生效 every worker \(1\) answers with it"
        rf" · 撤销 Undo: 回滚到 roll back to v{version}$"))
    assert "退款当天到账" in ask(customer, "退款多久到账")  # "saved" already means answered: no waiting

    # a question another entry already has: refused before saving, the field is marked
    admin.fill("#f-questions", "退款多久到账\n怎么退货")
    admin.click("#save")
    expect(admin.locator("#editor-error")).to_have_text(
        "question '怎么退货' is also a question of entry 'return-policy'; keep it in one entry, "
        "or the bot cannot tell them apart")
    expect(admin.locator("#editor-error")).to_have_attribute("data-field", "questions")
    assert httpx.get(served.base + "/healthz").json()["knowledge_version"] == version + 1

    # deleting says how to undo it
    admin.once("dialog", lambda dialog: dialog.accept())
    admin.click("#delete")
    expect(admin.locator("#notice")).to_contain_text(f"已删除 Deleted refund-time · version {version + 2}")
    expect(admin.locator("#notice")).to_contain_text(f"roll back to v{version + 1}")

    # the whole knowledge base rolled back from the history tab: also answered everywhere, also undoable
    admin.click('#tabs button[data-tab="audit"]')
    admin.once("dialog", lambda dialog: dialog.accept())
    admin.locator(f'#audit .version[data-version="{version + 2}"] button.rollback-all').click()
    expect(admin.locator("#audit-notice")).to_have_text(re.compile(
        rf"^已回滚整库 Knowledge base rolled back · version {version + 3} · 所有 1 个实例已生效 every worker \(1\) "
        rf"answers with it · 撤销 Undo: 回滚到 roll back to v{version + 2}$"))
    assert "退款当天到账" in ask(customer, "退款多久到账")

    # an import that would replace the knowledge base with one entry asks first; declining keeps all
    one = tmp_path / "one.yaml"
    one.write_text("- id: only-one\n  questions: [只有一条]\n  answer: {zh: 一条, en: one}\n", encoding="utf-8")
    admin.click('#tabs button[data-tab="transfer"]')
    admin.set_input_files("#import-file", str(one))
    admin.select_option("#import-mode", "replace")
    admin.click("#import-dry")
    expect(admin.locator("#import-result")).to_contain_text("删除 removed")
    messages: list[str] = []

    def decline(dialog: Dialog) -> None:
        messages.append(dialog.message)
        dialog.dismiss()

    admin.once("dialog", decline)
    admin.click("#import-apply")
    expect(admin.locator("#import-error")).to_contain_text("one.yaml has 1 entries: importing it would remove 40 of "
                                                           "the 40 stored entries")
    assert messages and "Import and remove them anyway?" in messages[0]
    assert httpx.get(served.base + "/healthz").json()["knowledge_entries"] == 40
