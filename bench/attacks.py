"""Attack drills of issue 15 against a real ``kefu serve --workers 2`` on a private Redis (AOF on),
requests sent as an attacker would send them; prints the counts that docs/benchmarks.md reports.

    python -m bench.attacks

Client addresses are simulated with ``X-Forwarded-For`` (uvicorn trusts it from 127.0.0.1, as it
would from a reverse proxy there).  Needs ``redis-server`` on the PATH; takes about a minute.
"""

from __future__ import annotations

import asyncio
import io
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from openpyxl import Workbook

from bot.agents.auth import hash_password
from knowledge.imports import COLUMNS
from tests.bot.conftest import RedisProcess
from tests.browser import free_port

ROOT = Path(__file__).resolve().parents[1]
PASSWORD = "drill-password-1"
ORDER = "我的订单号是 202611230001234，一直没发货"


@contextmanager
def served(tmp: Path) -> Iterator[tuple[str, Path]]:
    redis = RedisProcess(tmp)
    redis.start()
    port = free_port()
    config = tmp / "kefu.yaml"
    config.write_text(f"store:\n  url: {redis.url}\nintents:\n  embeddings: false\nknowledge:\n  cache_dir: {tmp}\n"
                      f"agents:\n  users:\n    - {{name: boss, role: admin, password_hash: \"{hash_password(PASSWORD)}\"}}\n",
                      encoding="utf-8")
    log = tmp / "serve.log"
    with log.open("w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "bot", "--config", str(config), "serve", "--port", str(port),
                                 "--workers", "2"], cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 180
            while True:
                try:
                    if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
                time.sleep(0.2)
            yield base, log
        finally:
            proc.terminate()
            proc.wait(timeout=20)
            redis.stop()


def at(address: str) -> dict[str, str]:
    return {"x-forwarded-for": address}


async def healthz_p50(http: httpx.AsyncClient, until: asyncio.Event | None = None, samples: int = 20) -> float:
    times: list[float] = []
    while (until is not None and not until.is_set()) or (until is None and len(times) < samples):
        start = time.perf_counter()
        await http.get("/healthz")
        times.append((time.perf_counter() - start) * 1000)
        await asyncio.sleep(0.05)
    return statistics.median(times)


async def login(http: httpx.AsyncClient, name: str, password: str, address: str) -> tuple[int, float]:
    start = time.perf_counter()
    r = await http.post("/api/agent/login", json={"name": name, "password": password}, headers=at(address))
    return r.status_code, (time.perf_counter() - start) * 1000


async def drills(base: str, log: Path) -> None:
    async with httpx.AsyncClient(base_url=base, timeout=60) as http:
        idle = await healthz_p50(http)
        done = asyncio.Event()
        probe = asyncio.create_task(healthz_p50(http, done))
        tries = [login(http, "boss" if i % 2 else f"ghost-{i}", "wrong-password", f"198.18.{i}.1") for i in range(56)]
        results = await asyncio.gather(*tries)
        done.set()
        loaded = await probe
        real = statistics.median(ms for i, (_, ms) in enumerate(results) if i % 2)
        fake = statistics.median(ms for i, (_, ms) in enumerate(results) if not i % 2)
        print(f"login flood: 56 wrong logins at once; /healthz p50 {idle:.0f} ms idle, {loaded:.0f} ms during; "
              f"login median real name {real:.0f} ms, unknown name {fake:.0f} ms; "
              f"statuses {sorted({s for s, _ in results})}")

        one_by_one = {name: statistics.median([(await login(http, name, "wrong-password", f"198.19.{i}.{n}"))[1]
                                                for i in range(6)]) for n, name in enumerate(("boss", "nobody-here"))}
        print(f"one login at a time: real name {one_by_one['boss']:.0f} ms, unknown name "
              f"{one_by_one['nobody-here']:.0f} ms (median of 6)")

        guesses = await asyncio.gather(*(login(http, "boss", f"guess-{i}", "203.0.113.66") for i in range(15)))
        statuses = [s for s, _ in guesses]
        own = (await login(http, "boss", PASSWORD, "198.51.100.20"))[0]
        print(f"15 parallel guesses from one address: {statuses.count(401)} evaluated (401), "
              f"{statuses.count(429)} refused (429); the agent's own login from her address: {own}")

        sessions = await asyncio.gather(*(http.post("/api/chat", json={"session": f"flood-{i:03d}", "text": "转人工"},
                                                    headers=at("203.0.113.77")) for i in range(60)))
        codes = [r.status_code for r in sessions]
        r = await http.post("/api/agent/login", json={"name": "boss", "password": PASSWORD}, headers=at("198.51.100.21"))
        csrf = {"x-csrf-token": r.json()["csrf"], **at("198.51.100.21")}
        queued = (await http.get("/api/agent/tickets", headers=csrf)).json()["queued"]
        real_customer = await http.post("/api/chat", json={"session": "real-customer", "text": "转人工"},
                                        headers=at("198.51.100.9"))
        print(f"queue flood: 60 new sessions in one burst from one address: {codes.count(200)} admitted, "
              f"{codes.count(429)} refused; tickets queued {len(queued)}; a real customer then hears: "
              f"{real_customer.json()['replies'][0]['text'][-24:]!r}")

        await http.post("/api/chat", json={"session": "flooder-1", "text": ORDER}, headers=at("198.51.100.30"))
        for i in range(200):
            await http.post("/api/chat", json={"session": "flooder-1", "text": f"在吗{i}"}, headers=at("198.51.100.30"))
        queued = (await http.get("/api/agent/tickets", headers=csrf)).json()["queued"]
        ticket = next(t for t in queued if t["conversation_id"] == "web:flooder-1")
        detail = (await http.get(f"/api/agent/tickets/{ticket['id']}", headers=csrf)).json()
        texts = [line["text"] for line in detail["transcript"]]
        print(f"transcript flood: 1 order message + 200 more; the agent sees the order message: {ORDER in texts} "
              f"({len(texts)} lines kept)")

        bomb = ['- id: "a"', '  questions: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
        bomb += [f"  q{i}: &l{i} [{', '.join(f'*l{i - 1}' for _ in range(9))}]" for i in range(1, 9)]
        text = "\n".join([*bomb, "  id2: *l8"]) + "\n"
        start = time.perf_counter()
        r = await http.post("/api/admin/import", params={"format": "yaml", "dry_run": "1"}, headers=csrf,
                            content=text.encode())
        print(f"YAML alias bomb ({len(text)} bytes): {r.status_code}, {len(r.content)} bytes back in "
              f"{(time.perf_counter() - start) * 1000:.0f} ms")

        book = Workbook()
        sheet = book.active
        assert sheet is not None
        sheet.append(list(COLUMNS))
        for i in range(5000):
            sheet.append([f"entry-{i}", f"问题{i}", f"答案{i}", "", "", "true", ""])
        buffer = io.BytesIO()
        book.save(buffer)
        data = inflate_dimension(buffer.getvalue())
        probe_done = asyncio.Event()
        probe = asyncio.create_task(healthz_p50(http, probe_done))
        start = time.perf_counter()
        r = await http.post("/api/admin/import", params={"format": "xlsx", "dry_run": "1"}, headers=csrf,
                            content=data)
        took = time.perf_counter() - start
        probe_done.set()
        during = await probe
        print(f"XLSX of 5,000 rows declaring A1:XFD1048576 ({len(data)} bytes): {r.status_code} in {took:.2f} s, "
              f"/healthz p50 {during:.0f} ms meanwhile")

        await http.get("/api/chat/abcdefgh/messages", params={"x": "13800000000", "secret": "S3CRET"})
        await asyncio.sleep(0.5)
        text = log.read_text(encoding="utf-8", errors="replace")
        print(f"access log: line for ?x=138****0000 present: {'x=138****0000' in text}; "
              f"phone or secret in clear: {'13800000000' in text or 'S3CRET' in text}; "
              f"logging errors: {text.count('Logging error')}")


def inflate_dimension(xlsx: bytes) -> bytes:
    import re
    import zipfile

    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(xlsx)) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            data = src.read(info.filename)
            if info.filename == "xl/worksheets/sheet1.xml":
                data = re.sub(rb'<dimension ref="[^"]*" ?/>', b'<dimension ref="A1:XFD1048576"/>', data)
            dst.writestr(info, data)
    return out.getvalue()


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp, served(Path(tmp)) as (base, log):
        asyncio.run(drills(base, log))


if __name__ == "__main__":
    main()
