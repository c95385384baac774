"""No silent wrong answers, in real browsers against a real ``kefu serve``: the customer taps
"没用 No" under an answer in the web chat, then asks for a human after another answer; the agent
marks that bot answer wrong in the agent console; the admin finds both questions on the review
list, each next to the entry the bot used."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.bot.admin.test_admin_browser import PASSWORD, admin_config
from tests.browser import CHROMIUM_ARGS, chromium_path, kefu_server

pytestmark = pytest.mark.browser


@pytest.fixture
def served(tmp_path: Path, cache_dir: Path) -> Iterator[tuple[Browser, str]]:
    executable = chromium_path()
    with kefu_server(admin_config(cache_dir), tmp_path) as base, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
        expect.set_options(timeout=20_000)
        try:
            yield browser, base
        finally:
            browser.close()


def log_in(page: Page, url: str, name: str) -> None:
    page.goto(url)
    page.fill("#login-name", name)
    page.fill("#login-password", PASSWORD)
    page.click("#login-submit")


def ask(page: Page, text: str) -> None:
    before = page.locator(".msg.bot[data-seq]").count()
    page.fill("#text", text)
    page.press("#text", "Enter")
    expect(page.locator(".msg.bot[data-seq]")).to_have_count(before + 1)


def test_wrong_answers_reach_the_admin_review_list_from_the_customer_and_the_agent(
        served: tuple[Browser, str]) -> None:
    browser, base = served
    customer = browser.new_context(viewport={"width": 480, "height": 820}).new_page()
    customer.goto(base + "/")
    ask(customer, "怎么退货")
    answer = customer.locator(".msg.bot[data-seq]").last
    with customer.expect_response(lambda r: r.url.endswith("/api/feedback")) as voted:
        answer.locator(".rate button[data-helpful=false]").click()
    assert voted.value.json() == {"recorded": True}
    expect(answer.locator(".rate button[aria-pressed=true]")).to_have_text("没用 No")
    ask(customer, "退款多久到账")
    ask(customer, "转人工")
    expect(customer.locator(".msg.bot[data-seq]").last).to_contain_text("人工")

    agent = browser.new_context(viewport={"width": 1360, "height": 820}).new_page()
    log_in(agent, base + "/agent", "li")
    agent.locator("#queued .ticket").first.click()
    marks = agent.locator("#transcript .line.bot .wrong-answer")
    expect(marks).to_have_count(2)  # the two answers; the greeting and the handoff reply are not answers
    marks.last.click()  # the answer to "退款多久到账"
    expect(marks.last).to_have_text("已送审 Sent for review")
    expect(marks.first).to_have_text("答错了 Wrong answer")
    expect(agent.locator("#toasts")).to_contain_text("refund")

    admin = browser.new_context(viewport={"width": 1360, "height": 900}).new_page()
    log_in(admin, base + "/admin", "boss")
    admin.click('#tabs button[data-tab="unanswered"]')
    returned = admin.locator(".cluster").filter(has=admin.locator("b", has_text="怎么退货"))
    expect(returned.locator(".reasons")).to_contain_text("客户点了没用 customer: not helpful ×1")
    expect(returned.locator("select.target")).to_have_value("return-policy")  # next to the entry used
    refunded = admin.locator(".cluster").filter(has=admin.locator("b", has_text="退款多久到账"))
    expect(refunded.locator(".reasons")).to_contain_text("客服判定答错 agent: wrong answer ×1")
    expect(refunded.locator(".reasons")).to_contain_text("客户质疑答案 customer disputed the answer ×1")
    expect(refunded.locator("select.target")).to_have_value("refund-time")
