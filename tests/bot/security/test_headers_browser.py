"""Every page carries a strict Content-Security-Policy, and still works under it in Chromium:
no inline script or style is refused, the chat answers, the consoles' login forms render."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright

from bot.agents.auth import hash_password
from tests.browser import CHROMIUM_ARGS, chromium_path, kefu_server

pytestmark = pytest.mark.browser
PASSWORD = "boss-password-1"


@pytest.fixture
def served(tmp_path: Path, cache_dir: Path) -> Iterator[tuple[Browser, str]]:
    config = (f"knowledge:\n  cache_dir: {cache_dir}\nintents:\n  embeddings: false\n"
              f"agents:\n  users:\n    - {{name: boss, role: admin, password_hash: \"{hash_password(PASSWORD)}\"}}\n")
    with kefu_server(config, tmp_path) as base, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium_path(), headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser, base
        finally:
            browser.close()


def watched(context: BrowserContext) -> tuple[Page, list[str]]:
    """A page that records every CSP violation the browser reports."""
    page = context.new_page()
    refused: list[str] = []
    page.on("console", lambda m: refused.append(m.text) if "Content Security Policy" in m.text else None)
    return page, refused


@pytest.mark.parametrize("path", ["/", "/agent", "/admin"])
def test_pages_send_strict_headers(served: tuple[Browser, str], path: str) -> None:
    _, base = served
    response = httpx.get(base + path)
    assert response.status_code == 200
    csp = response.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "strict-origin-when-cross-origin"
    assert response.headers["x-frame-options"] == "DENY"
    api = httpx.post(base + "/api/chat", json={"session": "headers-1", "text": "x" * 3000})
    assert api.status_code == 413 and api.headers["x-content-type-options"] == "nosniff"


def test_chat_and_consoles_work_under_the_policy(served: tuple[Browser, str]) -> None:
    browser, base = served
    context = browser.new_context()
    chat, refused = watched(context)
    chat.goto(base + "/")
    expect(chat.locator(".msg.bot").first).to_contain_text("有什么可以帮您")
    chat.fill("#text", "怎么退货")
    chat.click("#send")
    expect(chat.locator(".msg.bot")).to_have_count(2)

    agent, agent_refused = watched(context)
    agent.goto(base + "/agent")
    agent.fill("#login-name", "boss")
    agent.fill("#login-password", PASSWORD)
    agent.click("#login-submit")
    expect(agent.locator("#login")).to_be_hidden()

    admin, admin_refused = watched(context)
    admin.goto(base + "/admin")
    expect(admin.locator("#login")).to_be_hidden()
    admin.click('#tabs button[data-tab="try"]')
    admin.fill("#try-text", "怎么退货")
    admin.press("#try-text", "Enter")
    bar = admin.locator("td .bar").first
    expect(bar).to_be_attached()
    assert bar.evaluate("b => b.style.width").endswith("px")  # set through CSSOM, not a refused attribute
    assert refused == agent_refused == admin_refused == []
