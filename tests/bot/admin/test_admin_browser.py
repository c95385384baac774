"""The admin console in a real browser against a real ``kefu serve``: edit an entry and see the
web chat answer it without a restart, roll it back, import a CSV with a bad row, turn an
unanswered cluster into knowledge.

Set KEFU_DOC_SCREENSHOTS=1 to refresh the screenshots in docs/img/ used by docs/admin-console.md.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from bot.agents.auth import hash_password
from tests.browser import CHROMIUM_ARGS, ROOT, chromium_path, kefu_server

pytestmark = pytest.mark.browser
PASSWORD = "boss-password-1"
TIMEOUT = 20_000
NEW_ANSWER = "好消息：退款现在当天到账，最快5分钟。"


def admin_config(cache_dir: Path, store_url: str = "memory://", embeddings: bool = False) -> str:
    digest = hash_password(PASSWORD)
    return (f"knowledge:\n  cache_dir: {cache_dir}\nstore:\n  url: {store_url}\n"
            f"intents:\n  embeddings: {'true' if embeddings else 'false'}\n"
            "agents:\n  queue_update_seconds: 0\n  users:\n"
            f"    - {{name: li, role: agent, password_hash: \"{digest}\"}}\n"
            f"    - {{name: boss, role: admin, password_hash: \"{digest}\"}}\n")


@dataclass
class Served:
    browser: Browser
    base: str
    img: Path

    def admin(self) -> Page:
        page = self.browser.new_context(viewport={"width": 1360, "height": 900}).new_page()
        page.goto(self.base + "/admin")
        page.fill("#login-name", "boss")
        page.fill("#login-password", PASSWORD)
        page.click("#login-submit")
        expect(page.locator("#status")).to_contain_text("version")
        return page

    def customer(self) -> Page:
        page = self.browser.new_context(viewport={"width": 480, "height": 820}).new_page()
        page.goto(self.base + "/")
        expect(page.locator(".msg.bot").first).to_be_visible()
        return page

    def wait_for_worker(self, version: int) -> None:
        """Until the serving worker answers from ``version`` (it reloads by itself, no restart)."""
        deadline = time.monotonic() + 10
        while httpx.get(self.base + "/healthz").json()["knowledge_version"] < version:
            assert time.monotonic() < deadline, "the worker did not pick up the change within 10 s"
            time.sleep(0.1)


def ask(page: Page, text: str) -> str:
    before = page.locator(".msg.bot").count()
    page.fill("#text", text)
    page.press("#text", "Enter")
    expect(page.locator(".msg.bot")).not_to_have_count(before)
    return page.locator(".msg.bot").last.inner_text()


def shown_version(page: Page) -> int:
    return int(page.locator("#status").inner_text().split("version")[1].split()[0])


@pytest.fixture
def served(tmp_path: Path, cache_dir: Path) -> Iterator[Served]:
    executable = chromium_path()
    img = tmp_path
    if os.environ.get("KEFU_DOC_SCREENSHOTS") == "1":
        img = ROOT / "docs" / "img"
        img.mkdir(parents=True, exist_ok=True)
    with kefu_server(admin_config(cache_dir), tmp_path) as base, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
        expect.set_options(timeout=TIMEOUT)
        try:
            yield Served(browser, base, img)
        finally:
            browser.close()


def test_edit_is_answered_in_the_chat_without_restart_then_rolled_back(served: Served) -> None:
    customer = served.customer()
    assert "原路退回" in ask(customer, "退款多久到账")

    admin = served.admin()
    admin.fill("#search", "退款多久")
    admin.locator('.entry[data-id="refund-time"]').click()
    expect(admin.locator("#f-id")).to_have_value("refund-time")
    admin.fill("#f-answer-zh", "")  # no answer in any language: refused, and the form says which field
    admin.fill("#f-answer-en", "")
    admin.click("#save")
    expect(admin.locator("#editor-error")).to_contain_text("answer")
    expect(admin.locator("#editor-error")).to_have_attribute("data-field", "answer")
    admin.fill("#f-answer-zh", NEW_ANSWER)
    admin.fill("#f-answer-en", "Good news: refunds now arrive the same day.")
    admin.click("#save")
    expect(admin.locator("#saved")).to_contain_text("已保存")
    expect(admin.locator("#history .version")).to_have_count(1)
    expect(admin.locator("#history .version").first).to_contain_text("boss")
    admin.screenshot(path=str(served.img / "admin-knowledge.png"))
    served.wait_for_worker(shown_version(admin))
    assert NEW_ANSWER in ask(customer, "退款多久到账")

    # the test box shows the same decision the chat took, with candidates and scores
    admin.click('#tabs button[data-tab="try"]')
    admin.fill("#try-text", "退款多久到账")
    admin.click("#try-submit")
    expect(admin.locator("#try-result")).to_contain_text("refund-time")
    expect(admin.locator("#try-result")).to_contain_text(NEW_ANSWER)
    admin.screenshot(path=str(served.img / "admin-try.png"))

    # undo the edit from the entry's history
    admin.click('#tabs button[data-tab="knowledge"]')
    admin.locator("#history .version").last.locator("button.rollback").click()
    expect(admin.locator("#saved")).to_contain_text("已回滚")
    expect(admin.locator("#f-answer-zh")).to_have_value(re.compile("^退款会原路退回"))
    expect(admin.locator("#history .version").first).to_contain_text("rollback")
    admin.click('#tabs button[data-tab="audit"]')
    expect(admin.locator("#audit .version").first).to_contain_text("rollback refund-time")
    admin.screenshot(path=str(served.img / "admin-history.png"))
    served.wait_for_worker(shown_version(admin))
    reply = ask(served.customer(), "退款多久到账")  # a new customer: asking thrice in one chat means "get a human"
    assert "原路退回" in reply and NEW_ANSWER not in reply


def test_csv_import_with_a_bad_row_shows_the_row_and_imports_nothing(served: Served, tmp_path: Path) -> None:
    admin = served.admin()
    version = shown_version(admin)
    bad = tmp_path / "faq.csv"
    bad.write_text("id,questions,answer_zh,answer_en,tags,enabled\n"
                   "gift-card,礼品卡怎么用|How do I use a gift card?,在结算页选择礼品卡。,Pick it at checkout.,payment,true\n"
                   "gift-card-balance,礼品卡余额怎么查,,,,\n", encoding="utf-8")
    admin.click('#tabs button[data-tab="transfer"]')
    admin.set_input_files("#import-file", str(bad))
    admin.click("#import-dry")
    expect(admin.locator("#import-error")).to_contain_text("row 3")
    expect(admin.locator("#import-error")).to_contain_text("answer_zh")
    expect(admin.locator("#import-apply")).to_be_disabled()
    admin.screenshot(path=str(served.img / "admin-import-error.png"))
    assert httpx.get(served.base + "/healthz").json()["knowledge_version"] == version

    good = tmp_path / "faq-fixed.csv"
    good.write_text(bad.read_text(encoding="utf-8").replace("gift-card-balance,礼品卡余额怎么查,,,,",
                                                             "gift-card-balance,礼品卡余额怎么查,在“我的”→“礼品卡”查看余额。,,,"),
                    encoding="utf-8")
    admin.set_input_files("#import-file", str(good))
    admin.click("#import-dry")
    expect(admin.locator("#import-result")).to_contain_text("2 新增 added")
    admin.click("#import-apply")
    expect(admin.locator("#import-result")).to_contain_text("已导入")
    served.wait_for_worker(version + 1)
    assert "查看余额" in ask(served.customer(), "礼品卡余额怎么查")


def test_unanswered_cluster_added_to_an_entry_is_then_answered(served: Served) -> None:
    for text in ("礼品卡怎么用", "礼品卡怎么使用", "礼品卡如何用"):  # three customers, one need
        ask(served.customer(), text)
    admin = served.admin()
    admin.click('#tabs button[data-tab="unanswered"]')
    cluster = admin.locator(".cluster").filter(has_text="礼品卡怎么使用").first
    expect(cluster.locator(".count")).to_have_text("3")
    cluster.locator("select.target").select_option("payment-methods")
    cluster.locator("button.check").click()
    expect(cluster.locator(".cluster-result")).to_contain_text("would change")
    admin.screenshot(path=str(served.img / "admin-unanswered.png"))
    cluster.locator("button.add-to-entry").click()
    expect(admin.locator(".cluster-result").first).to_contain_text("已添加")
    served.wait_for_worker(shown_version(admin))
    reply = ask(served.customer(), "礼品卡怎么用")
    assert "支持微信支付、支付宝" in reply

    admin.click('#tabs button[data-tab="dashboard"]')
    expect(admin.locator("#dash-cards")).to_contain_text("Conversations")
    expect(admin.locator("#chart-daily svg polyline")).to_have_count(2)
    admin.screenshot(path=str(served.img / "admin-dashboard.png"), full_page=True)


def test_an_agent_cannot_open_the_admin_console(served: Served) -> None:
    page = served.browser.new_page()
    page.goto(served.base + "/admin")
    page.fill("#login-name", "li")
    page.fill("#login-password", PASSWORD)
    page.click("#login-submit")
    expect(page.locator("#login-error")).to_contain_text("Admins only")
    expect(page.locator("#app")).to_be_hidden()
