"""Cold and warm start of one ``kefu serve`` worker with the shipped FAQ: seconds until it answers,
and its resident memory once it does.

    python -m bench.startup            # cold (empty index cache), then warm (same cache)
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from tests.browser import free_port


def start(cache: Path, extra: str = "") -> tuple[float, float]:
    """Seconds until one ``kefu serve`` answers, and its RSS in MB; ``extra`` is more YAML."""
    port = free_port()
    config = cache / "config.yaml"
    config.write_text(f"server: {{port: {port}}}\nknowledge: {{cache_dir: {cache}}}\n{extra}", encoding="utf-8")
    begun = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "bot", "--config", str(config), "serve"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while True:
            try:
                if httpx.post(f"http://127.0.0.1:{port}/api/chat", json={"session": "bench-start-1", "text": "怎么退货"},
                              timeout=30).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.perf_counter() - begun > 600:
                raise SystemExit("kefu serve did not start")
            time.sleep(0.1)
        seconds = time.perf_counter() - begun
        return seconds, rss_mb(proc.pid)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def rss_mb(pid: int) -> float:
    """Resident memory of a running process, in MB (from /proc)."""
    with open(f"/proc/{pid}/status", encoding="utf-8") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS")) / 1024


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="kefu-start-") as folder:
        cache = Path(folder)
        for kind in ("cold", "warm"):
            seconds, rss = start(cache)
            print(f"{kind}: answers after {seconds:.1f} s, RSS {rss:.0f} MB (pid-level, one worker, shipped FAQ)")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    raise SystemExit(main())
