"""The whole handoff in real browsers against a real ``kefu serve``: a customer complains on the
web chat, an agent logs in to /agent, claims, replies, resolves; the customer rates the service.

Set KEFU_DOC_SCREENSHOTS=1 to refresh the screenshots in docs/img/ used by docs/agent-console.md.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from bot.agents.auth import hash_password
from tests.browser import CHROMIUM_ARGS, ROOT, chromium_path, kefu_server

pytestmark = pytest.mark.browser
PASSWORD = "li-password-1"
TIMEOUT = 20_000


def console_config(cache_dir: Path, store_url: str = "memory://") -> str:
    digest = hash_password(PASSWORD)
    return (f"knowledge:\n  cache_dir: {cache_dir}\nstore:\n  url: {store_url}\n"
            "agents:\n  queue_update_seconds: 0\n  unclaimed_sla_minutes: 0.05\n  sla_check_seconds: 0.5\n"
            "  users:\n"
            f"    - {{name: li, role: agent, password_hash: \"{digest}\"}}\n"
            f"    - {{name: boss, role: admin, password_hash: \"{digest}\"}}\n")


@pytest.fixture
def served(tmp_path: Path, cache_dir: Path) -> Iterator[tuple[Browser, str]]:
    executable = chromium_path()
    with kefu_server(console_config(cache_dir), tmp_path) as base, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser, base
        finally:
            browser.close()


def shots(tmp_path: Path) -> Path:
    if os.environ.get("KEFU_DOC_SCREENSHOTS") == "1":
        target = ROOT / "docs" / "img"
        target.mkdir(parents=True, exist_ok=True)
        return target
    return tmp_path


def test_complaint_to_agent_to_rating(served: tuple[Browser, str], tmp_path: Path) -> None:
    browser, base = served
    img = shots(tmp_path)
    customer: Page = browser.new_context(viewport={"width": 480, "height": 820}).new_page()
    agent: Page = browser.new_context(viewport={"width": 1360, "height": 820}).new_page()
    expect.set_options(timeout=TIMEOUT)

    customer.goto(base + "/")
    customer.fill("#text", "退款多久到账")
    customer.press("#text", "Enter")
    expect(customer.locator(".msg.bot")).to_have_count(2)
    customer.fill("#text", "我要投诉你们，快递一个星期了还没到，太差劲了")
    customer.press("#text", "Enter")
    handoff = customer.locator(".msg.bot").nth(2)
    expect(handoff).to_contain_text("抱歉")
    expect(handoff).to_contain_text("第1位")

    agent.goto(base + "/agent")
    agent.fill("#login-name", "li")
    agent.fill("#login-password", "wrong password")
    agent.click("#login-submit")
    expect(agent.locator("#login-error")).to_contain_text("错误")
    agent.fill("#login-password", PASSWORD)
    agent.click("#login-submit")
    queued = agent.locator("#queued .ticket")
    expect(queued).to_have_count(1)
    expect(queued.first).to_contain_text("投诉")
    expect(queued.first).to_contain_text("一个星期")
    expect(agent.locator("#live")).to_contain_text("live")

    # a second customer asks for a human while the agent is looking: the inbox updates live
    second = browser.new_context().new_page()
    second.goto(base + "/")
    second.fill("#text", "转人工")
    second.press("#text", "Enter")
    expect(second.locator(".msg.bot").nth(1)).to_contain_text("第2位")
    expect(queued).to_have_count(2)
    queued.first.click()
    expect(agent.locator("#ctx-summary")).to_contain_text("投诉")
    expect(agent.locator("#ctx-candidates")).not_to_be_empty()
    expect(agent.locator("#composer")).to_be_hidden()  # not claimed yet: nothing to type into
    agent.screenshot(path=str(img / "agent-inbox.png"))

    queued.first.locator(".claim").click()
    expect(agent.locator("#mine .ticket")).to_have_count(1)
    expect(agent.locator("#queued .ticket")).to_have_count(1)
    expect(agent.locator("#chat-status")).to_contain_text("claimed")
    expect(agent.locator("#composer")).to_be_visible()
    expect(agent.locator("#transcript .line.customer").first).to_contain_text("退款多久到账")
    expect(customer.locator(".msg.bot").last).to_contain_text("li")  # "人工客服li已接入"
    expect(second.locator(".msg.bot").last).to_contain_text("第1位")  # the queue moved
    expect(agent.locator("#queued .ticket.escalated")).to_have_count(1)  # waited past the SLA: red
    expect(agent.locator("#queued .ticket.escalated")).to_contain_text("超时 SLA")

    agent.select_option("#canned", index=1)
    expect(agent.locator("#reply")).not_to_have_value("")
    agent.fill("#reply", "您好，我是小李，非常抱歉让您久等了，我马上为您查询快递。")
    agent.click("#send")
    expect(agent.locator("#transcript .line.agent")).to_have_count(1)
    expect(customer.locator(".msg.agent")).to_contain_text("小李")

    customer.fill("#text", "订单号是 12345")
    customer.press("#text", "Enter")
    expect(agent.locator("#transcript .line.customer").last).to_contain_text("12345")  # live, over SSE

    agent.fill("#note-text", "客户情绪激动 VIP，已联系仓库")
    agent.click("#note-add")
    # (the SLA sweep may have noted an escalation first: login now hashes at OWASP cost, a little slower)
    expect(agent.locator("#notes .note", has_text="客户情绪激动")).to_contain_text("VIP")
    agent.screenshot(path=str(img / "agent-chat.png"))

    agent.click("#resolve")
    expect(agent.locator("#mine .ticket")).to_have_count(0)
    survey = customer.locator(".msg.bot").last
    expect(survey).to_contain_text("打分")
    survey.get_by_role("button", name="5").click()
    comment = customer.locator(".msg.bot").last
    expect(comment).to_contain_text("意见")
    customer.fill("#text", "小李很耐心，谢谢")
    customer.press("#text", "Enter")
    expect(customer.locator(".msg.bot").last).to_contain_text("感谢您的反馈")
    customer.screenshot(path=str(img / "customer-survey.png"), full_page=True)
    expect(customer.locator("#log")).not_to_contain_text("VIP")

    with httpx.Client(base_url=base) as admin:
        csrf = admin.post("/api/agent/login", json={"name": "boss", "password": PASSWORD}).json()["csrf"]
        assert csrf
        ratings = admin.get("/api/agent/ratings").json()
        assert ratings["count"] == 1 and ratings["ratings"][0]["rating"] == "5"
        assert ratings["ratings"][0]["agent"] == "li"

    # back with the bot: an FAQ is answered again
    customer.fill("#text", "怎么退货")
    customer.press("#text", "Enter")
    expect(customer.locator(".msg.bot").last).to_contain_text("退")

    # the admin's console shows the satisfaction score; the second customer still waits
    agent.click("#logout")
    expect(agent.locator("#login-submit")).to_be_visible()
    agent.fill("#login-name", "boss")
    agent.fill("#login-password", PASSWORD)
    agent.click("#login-submit")
    expect(agent.locator("#csat")).to_contain_text("★5")
    expect(agent.locator("#queued .ticket")).to_have_count(1)
    expect(agent.locator("#others .ticket")).to_have_count(0)
    expect(agent.locator("#transcript .line")).to_have_count(0)  # nothing left over from li's session
    agent.locator("#queued .ticket").first.click()
    expect(agent.locator("#claim")).to_be_visible()
    expect(agent.locator("#composer")).to_be_hidden()
    agent.screenshot(path=str(img / "agent-admin.png"))
