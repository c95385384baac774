"""The embeddable widget in real Chromium: a shop's own page (another origin) adds one <script>
tag; a chat bubble opens Kefu's chat, which remembers the visitor across reloads.  A site not
in ``channels.web.allowed_origins`` gets neither the frame nor the API.

Set KEFU_DOC_SCREENSHOTS=1 to refresh docs/img/widget.png (README).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import threading
import time
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import FilePayload, Page, expect, sync_playwright

from tests.browser import CHROMIUM_ARGS, ROOT, chromium_path, free_port, kefu_server

pytestmark = pytest.mark.browser

SHOP_PAGE = """<!doctype html><html lang="zh"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>示例商城</title></head>
<body><h1>示例商城 Example Shop</h1><p>春季新品上市。</p>
<script src="{kefu}/widget.js" async></script></body></html>"""


IDENTITY_SECRET = "shop-and-kefu-share-this"


def signed(secret: str, claims: dict[str, object]) -> str:
    """What the shop's backend puts in data-customer (README)."""
    payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
    signature = base64.urlsafe_b64encode(hmac.new(secret.encode(), payload.encode(), hashlib.sha256).digest())
    return f"{payload}.{signature.decode().rstrip('=')}"


class Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        return


def site(directory: Path, html: str) -> tuple[ThreadingHTTPServer, str]:
    """A website of its own on another port (so another origin), serving ``index.html``."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "index.html").write_text(html, encoding="utf-8")
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), partial(Quiet, directory=str(directory)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


@pytest.fixture
def sites(tmp_path: Path, cache_dir: Path) -> Iterator[tuple[str, str, str]]:
    """(kefu, an allowed shop, a site that is not allowed)."""
    kefu_port = free_port()
    kefu = f"http://127.0.0.1:{kefu_port}"
    shop, shop_url = site(tmp_path / "shop", SHOP_PAGE.format(kefu=kefu))
    other, other_url = site(tmp_path / "other", SHOP_PAGE.format(kefu=kefu))
    for page, secret in (("member.html", IDENTITY_SECRET), ("forged.html", "not-the-secret")):
        customer = signed(secret, {"id": "u-1001", "name": "王女士", "exp": int(time.time()) + 3600})
        (tmp_path / "shop" / page).write_text(
            SHOP_PAGE.format(kefu=kefu).replace('widget.js"', f'widget.js" data-customer="{customer}"'), encoding="utf-8")
    config = (f"knowledge:\n  cache_dir: {cache_dir}\nintents:\n  embeddings: false\n"
              f"channels:\n  web:\n    allowed_origins: [\"{shop_url}\"]\n    identity_secret: {IDENTITY_SECRET}\n")
    try:
        with kefu_server(config, tmp_path, port=kefu_port) as base:
            yield base, shop_url, other_url
    finally:
        shop.shutdown()
        other.shutdown()


def open_widget(page: Page) -> None:
    page.click("#kefu-widget-bubble")
    expect(page.locator("#kefu-widget-panel")).to_be_visible()


def test_one_script_tag_puts_the_chat_on_a_shop_page(sites: tuple[str, str, str], tmp_path: Path) -> None:
    kefu, shop, other = sites
    img = ROOT / "docs" / "img" if os.environ.get("KEFU_DOC_SCREENSHOTS") == "1" else tmp_path
    expect.set_options(timeout=20_000)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium_path(), headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1100, "height": 760})
        page.goto(shop + "/")
        expect(page.locator("#kefu-widget-bubble")).to_contain_text("在线客服")
        open_widget(page)
        chat = page.frame_locator("#kefu-widget-panel iframe")
        chat.locator("#text").fill("怎么退货")
        chat.locator("#text").press("Enter")
        answer = chat.locator(".msg.bot[data-seq]")
        expect(answer).to_have_count(1)
        expect(answer).to_contain_text("退")
        with page.expect_response(lambda r: r.url.endswith("/api/feedback")) as voted:
            answer.locator(".rate button[data-helpful=true]").click()
        assert voted.value.json() == {"recorded": True}
        expect(answer.locator(".rate button[aria-pressed=true]")).to_have_count(1)
        page.screenshot(path=str(img / "widget.png"))
        chat.locator("#file").set_input_files(files=[FilePayload(name="发票.png", mimeType="image/png",
                                                                 buffer=b"\x89PNG\r\n\x1a\n" + b"\x00" * 64)])
        expect(chat.locator(".msg.customer[data-seq]").last).to_contain_text("发票.png")  # kept for the agent
        expect(chat.locator(".msg.bot[data-seq]").last).to_contain_text("人工客服也能看到")

        page.reload()  # the visitor is remembered: the conversation is back, once
        open_widget(page)
        expect(chat.locator(".msg.bot[data-seq]")).to_have_count(2)
        expect(chat.locator(".msg.customer[data-seq]")).to_have_count(2)
        expect(chat.locator(".msg.customer[data-seq] .file")).to_have_text(["附件 File: 发票.png"])

        phone = browser.new_page(viewport={"width": 375, "height": 700}, is_mobile=True, has_touch=True)
        phone.goto(shop + "/")
        open_widget(phone)
        box = phone.locator("#kefu-widget-panel").bounding_box()
        assert box is not None and box["width"] == 375  # the whole screen on a phone
        expect(phone.frame_locator("#kefu-widget-panel iframe").locator("#send")).to_be_visible()

        def visitor_in(url: str) -> str:
            member = browser.new_page()
            member.goto(url)
            open_widget(member)
            frame = member.frame_locator("#kefu-widget-panel iframe")
            frame.locator("#text").fill("你好")
            frame.locator("#text").press("Enter")
            expect(frame.locator(".msg.bot[data-seq]")).to_have_count(1)
            token = member.frames[1].evaluate("localStorage.getItem('kefu-visitor')")
            member.close()
            return str(token)

        # a logged-in customer the shop vouched for: the same conversation as on their other devices
        theirs = httpx.post(f"{kefu}/api/chat/visitor", json={"customer": signed(IDENTITY_SECRET, {
            "id": "u-1001", "name": "王女士", "exp": int(time.time()) + 600})}).json()["token"]
        assert visitor_in(shop + "/member.html") == theirs
        assert visitor_in(shop + "/forged.html") not in ("", "None", theirs)  # a bad signature: anonymous, still served

        stranger = browser.new_page()
        blocked: list[str] = []
        stranger.on("console", lambda m: blocked.append(m.text))
        stranger.goto(other + "/")
        open_widget(stranger)
        stranger.wait_for_timeout(1500)
        assert any("frame-ancestors" in text for text in blocked), blocked  # Chromium refused to frame it
        expect(stranger.frame_locator("#kefu-widget-panel iframe").locator("#text")).to_have_count(0)
        status = stranger.evaluate(
            """async (kefu) => { try { const r = await fetch(kefu + "/api/chat/visitor", {method: "POST",
               headers: {"Content-Type": "application/json"}, body: "{}"}); return r.status; }
               catch (e) { return "blocked"; } }""", kefu)
        assert status == "blocked"  # no CORS grant for a site that is not allowed (and 403 on the server)
        browser.close()
