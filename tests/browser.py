"""Helpers for browser tests: a real ``kefu serve`` subprocess and Debian's headless chromium."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def chromium_path() -> str:
    """Debian's chromium; fail in CI (KEFU_REQUIRE_BROWSER=1), skip elsewhere, when it is missing."""
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        if os.environ.get("KEFU_REQUIRE_BROWSER") == "1":
            pytest.fail("browser tests must run but chromium is not installed (apt-get install chromium)")
        pytest.skip("chromium not installed")
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def kefu_server(config_text: str, tmp: Path, *extra_args: str, port: int | None = None) -> Iterator[str]:
    """Run ``kefu serve`` as a user would, on a free loopback port (or ``port``: a restart
    at the same address); yield its base URL."""
    port = port or free_port()
    config = tmp / "serve.yaml"
    config.write_text(config_text, encoding="utf-8")
    log = (tmp / "serve.log").open("a")
    proc = subprocess.Popen([sys.executable, "-m", "bot", "--config", str(config), "serve", "--port", str(port), *extra_args],
                            cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"kefu serve exited: {(tmp / 'serve.log').read_text()}")
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("kefu serve did not become healthy in time")
            time.sleep(0.2)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
