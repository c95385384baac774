"""A newcomer opens the web chat in a real browser and talks to the bot."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect, sync_playwright

from tests.browser import CHROMIUM_ARGS, chromium_path, kefu_server

pytestmark = pytest.mark.browser


@pytest.fixture
def page(tmp_path: Path, cache_dir: Path) -> Iterator[tuple[Page, str]]:
    executable = chromium_path()
    with kefu_server(f"knowledge:\n  cache_dir: {cache_dir}\n", tmp_path) as base, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser.new_page(), base
        finally:
            browser.close()


def test_web_chat_answers_and_hands_off(page: tuple[Page, str], tmp_path: Path) -> None:
    p, base = page
    p.goto(base + "/")
    expect(p.locator(".msg.bot").first).to_contain_text("有什么可以帮您")
    p.fill("#text", "怎么退货")
    p.click("#send")
    expect(p.locator(".msg.bot")).to_have_count(2)
    expect(p.locator(".msg.bot").nth(1)).to_contain_text("退")
    p.fill("#text", "我要投诉你们，太差劲了")
    p.press("#text", "Enter")
    expect(p.locator(".msg.bot")).to_have_count(3)
    expect(p.locator(".msg.bot").nth(2)).to_contain_text("人工客服")
    p.screenshot(path=str(tmp_path / "web-chat.png"), full_page=True)
