"""The web chat never loses or repeats a message: a customer goes through handoff → claim → agent
reply → resolve → survey in real Chromium, reloading at every step, with a second tab open and
the server SIGKILLed and restarted in between.  Each tab must show exactly the server's
transcript: every message once, in order.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, expect, sync_playwright

from bot.agents.auth import hash_password
from tests.bot.conftest import RedisProcess
from tests.browser import CHROMIUM_ARGS, ROOT, chromium_path, free_port

pytestmark = pytest.mark.browser
PASSWORD = "li-password-1"


class Server:
    """``kefu serve`` at a fixed address, so it can be killed and started again under the page."""

    def __init__(self, config: Path, port: int, log: Path) -> None:
        self.config, self.port, self.log = config, port, log
        self.proc: subprocess.Popen[bytes] | None = None
        self.base = f"http://127.0.0.1:{port}"

    def start(self) -> None:
        with self.log.open("a") as out:
            self.proc = subprocess.Popen([sys.executable, "-m", "bot", "--config", str(self.config), "serve",
                                          "--port", str(self.port)], cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 120
        while True:
            assert self.proc.poll() is None, self.log.read_text()
            try:
                if httpx.get(f"{self.base}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "kefu serve did not become healthy"
            time.sleep(0.2)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)


@pytest.fixture
def server(tmp_path: Path, cache_dir: Path, private_redis: RedisProcess) -> Iterator[Server]:
    config = tmp_path / "serve.yaml"
    config.write_text(
        f"knowledge:\n  cache_dir: {cache_dir}\nintents:\n  embeddings: false\n"
        f"store:\n  url: {private_redis.url}\n"
        "agents:\n  queue_update_seconds: 0\n  users:\n"
        f"    - {{name: li, role: agent, display_name: 小李, password_hash: \"{hash_password(PASSWORD)}\"}}\n",
        encoding="utf-8")
    s = Server(config, free_port(), tmp_path / "serve.log")
    s.start()
    yield s
    s.kill()


def shown(page: Page) -> list[tuple[int, str]]:
    """What the tab shows, in order: (seq, text) of every stored message."""
    return [(int(el.get_attribute("data-seq") or 0), el.locator(".text").inner_text())
            for el in page.locator("#log .msg[data-seq]").all()]


def stored(base: str, token: str) -> list[tuple[int, str]]:
    data = httpx.get(f"{base}/api/chat/messages", headers={"X-Kefu-Visitor": token}, timeout=10).json()
    return [(m["seq"], m["text"]) for m in data["messages"]]


def test_reload_restart_and_two_tabs_show_every_message_once_in_order(server: Server) -> None:
    executable = chromium_path()
    expect.set_options(timeout=20_000)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 390, "height": 780})  # a phone
        one, two = context.new_page(), context.new_page()
        one.goto(server.base + "/")
        expect(one.locator("#human")).to_be_visible()  # the 转人工 button is always there
        token = str(one.evaluate("() => new Promise(function wait(done) { const t = localStorage.getItem('kefu-visitor'); t ? done(t) : setTimeout(() => wait(done), 50); })"))

        def same_everywhere(count: int) -> None:
            """Both tabs show exactly the server's transcript, which has ``count`` lines."""
            for page in (one, two):
                expect(page.locator("#log .msg[data-seq]")).to_have_count(count)
                expect(page.locator("#log .msg.pending")).to_have_count(0)
            truth = stored(server.base, token)
            assert [seq for seq, _ in truth] == list(range(1, count + 1))
            assert shown(one) == truth and shown(two) == truth

        one.fill("#text", "怎么退货")
        one.press("#text", "Enter")
        expect(one.locator(".msg.bot[data-seq]")).to_have_count(1)
        one.click("#human")  # 转人工
        expect(one.locator(".msg.bot[data-seq]").last).to_contain_text("人工客服")
        two.goto(server.base + "/")  # a second tab of the same visitor: the whole conversation
        same_everywhere(4)
        one.reload()
        same_everywhere(4)

        agent = httpx.Client(base_url=server.base, timeout=10)
        csrf = {"X-CSRF-Token": agent.post("/api/agent/login", json={"name": "li", "password": PASSWORD}).json()["csrf"]}
        ticket = agent.get("/api/agent/tickets").json()["queued"][0]["id"]
        assert agent.post(f"/api/agent/tickets/{ticket}/claim", headers=csrf).status_code == 200
        expect(one.locator(".msg.system")).to_have_count(1)  # pushed by the long poll
        expect(one.locator(".msg.system")).to_contain_text("人工客服小李已接入")  # the display name, not the login
        same_everywhere(5)
        two.reload()
        same_everywhere(5)

        server.kill()  # the server dies; the customer writes meanwhile, the page keeps the message
        one.fill("#text", "在吗？")
        one.press("#text", "Enter")
        expect(one.locator("#log .msg.pending")).to_have_count(1)
        assert "在吗" in str(one.evaluate("localStorage.getItem('kefu-outbox')"))  # kept in the browser
        server.start()
        one.reload()  # at once: the old page may have sent it already, or the new one sends it from the outbox
        agent = httpx.Client(base_url=server.base, timeout=10, cookies=agent.cookies)
        same_everywhere(6)  # sent once after the restart; the other tab resumed its poll
        assert shown(one)[-1][1] == "在吗？"

        assert agent.post(f"/api/agent/tickets/{ticket}/typing", headers=csrf).status_code == 200
        expect(two.locator("#typing")).to_be_visible()  # "the agent is typing…"
        sent = agent.post(f"/api/agent/tickets/{ticket}/messages", json={"text": "在的，您好！请看 https://shop.example/returns\n第二行"},
                          headers=csrf)
        assert sent.status_code == 200, sent.text
        reply = one.locator(".msg.agent")
        expect(reply).to_have_count(1)
        expect(reply.locator(".who")).to_have_text("人工客服 小李")
        expect(two.locator("#typing")).to_be_hidden()
        expect(reply.locator("a")).to_have_attribute("href", "https://shop.example/returns")  # a safe link
        assert "第二行" in reply.inner_text()
        same_everywhere(7)
        one.reload()
        same_everywhere(7)

        assert agent.post(f"/api/agent/tickets/{ticket}/resolve", headers=csrf).status_code == 200
        expect(two.locator(".msg.bot[data-seq]").last).to_contain_text("打分")
        two.reload()
        two.locator(".msg.bot[data-seq]").last.get_by_role("button", name="5").click()
        expect(one.locator(".msg.bot[data-seq]").last).to_contain_text("意见")
        one.reload()
        one.fill("#text", "很耐心，谢谢")
        one.press("#text", "Enter")
        expect(two.locator(".msg.bot[data-seq]").last).to_contain_text("感谢")
        one.reload()
        two.reload()
        truth = stored(server.base, token)
        same_everywhere(len(truth))
        texts = [text for _, text in truth]
        assert texts.count("在吗？") == 1 and texts.count("很耐心，谢谢") == 1 and len(set(truth)) == len(truth)
        browser.close()
