"""Bad input at every edge of the ``kefu`` command, typed as a new user would: each problem is one
line naming the key or flag (exit 2), reported before anything slow starts, never a traceback."""

from __future__ import annotations

import dataclasses
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from bot.config import Config, StoreConfig
from tests.bot.conftest import RedisProcess
from tests.browser import ROOT, free_port


def kefu(*args: str, stdin: str = "", env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bot", *args], input=stdin, capture_output=True, text=True,
                          timeout=120, cwd=ROOT, env=env or dict(os.environ))


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def fast(tmp_path: Path, cache_dir: Path) -> str:
    """A config that starts quickly (lexical retrieval), for the lines that come before the build."""
    return f"knowledge: {{cache_dir: {cache_dir}}}\nintents: {{embeddings: false}}\n"


def closed_port() -> int:
    return free_port()  # nothing listens there once free_port has closed its probe


def errors(result: subprocess.CompletedProcess[str]) -> list[str]:
    return errors_of(result.stderr)


def errors_of(stderr: str) -> list[str]:
    assert "Traceback" not in stderr, stderr
    return [line for line in stderr.splitlines() if line.startswith("kefu: error: ")]


def test_serve_with_redis_on_a_closed_port_is_one_line(tmp_path: Path, fast: str) -> None:
    port = closed_port()
    config = write(tmp_path / "c.yaml", fast + f"store: {{url: 'redis://127.0.0.1:{port}/0'}}\n")
    result = kefu("serve", "--config", str(config))
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1, result.stderr  # exactly one line, nothing "listening" before it
    assert result.stderr.startswith(f"kefu: error: store.url: cannot reach Redis at redis://127.0.0.1:{port}/0 (")
    assert result.stderr.rstrip().endswith("start Redis or fix the host, port or password")


def test_serve_with_a_mysql_url_is_one_line(tmp_path: Path, fast: str) -> None:
    config = write(tmp_path / "c.yaml", fast + "store: {url: 'mysql://x'}\n")
    result = kefu("serve", "--config", str(config))
    assert result.returncode == 2
    assert result.stderr == ("kefu: error: store.url: expected memory://, redis://host:port/db, rediss:// "
                             "or unix://, got 'mysql://x'\n")


def test_channels_without_credentials_each_get_one_line(tmp_path: Path, fast: str) -> None:
    config = write(tmp_path / "c.yaml", fast + "channels:\n  telegram: {enabled: true}\n  wechat: {enabled: true}\n"
                                              "  wecom: {enabled: true, corp_id: ww1, secret: s, token: t}\n")
    result = kefu("serve", "--config", str(config))
    assert result.returncode == 2
    assert errors(result) == [
        "kefu: error: channels.telegram.token: required when channels.telegram.enabled is true "
        "(the token @BotFather gave you, e.g. ${TELEGRAM_BOT_TOKEN})",
        "kefu: error: channels.wechat.token: required when channels.wechat.enabled is true "
        "(the Token you chose in 服务器配置, e.g. ${WECHAT_TOKEN})",
        "kefu: error: channels.wecom.encoding_aes_key: required when channels.wecom.enabled is true "
        "(see docs/wechat.md)",
    ]
    assert len(result.stderr.splitlines()) == 3


@pytest.mark.parametrize(("where", "key"), [("flag", "--port"), ("config", "server.port")])
def test_a_port_out_of_range_names_the_flag_or_key(tmp_path: Path, fast: str, where: str, key: str) -> None:
    if where == "flag":
        result = kefu("serve", "--config", str(write(tmp_path / "c.yaml", fast)), "--port", "99999")
    else:
        result = kefu("serve", "--config", str(write(tmp_path / "c.yaml", fast + "server: {port: 99999}\n")))
    assert result.returncode == 2
    assert result.stderr == f"kefu: error: {key}: 99999 is not a TCP port; use a number from 1 to 65535 (e.g. 8080)\n"


def test_a_port_in_use_and_bad_hours_are_reported_before_the_index_build(tmp_path: Path, fast: str) -> None:
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    port = busy.getsockname()[1]
    try:
        config = write(tmp_path / "c.yaml", fast + "service_hours: {weekly: {mon: '9-21'}}\n")
        result = kefu("serve", "--config", str(config), "--port", str(port))
        assert result.returncode == 2
        assert errors(result) == ["kefu: error: service_hours.weekly.mon: expected HH:MM-HH:MM, got '9-21'"]
        result = kefu("serve", "--config", str(write(tmp_path / "ok.yaml", fast)), "--port", str(port))
        assert result.returncode == 2
        assert result.stderr == (f"kefu: error: --port: port {port} on 127.0.0.1 is already in use "
                                 "(another kefu serve?); stop it or choose a free port\n")  # nothing indexed first
    finally:
        busy.close()


def test_options_after_the_subcommand(tmp_path: Path, fast: str) -> None:
    config = write(tmp_path / "my.yaml", fast + "server: {prot: 1}\n")
    for args in (["serve", "--config", str(config)], ["--config", str(config), "serve"],
                 ["kb", "list", "--config", str(config), "-v"]):
        result = kefu(*args)
        assert result.returncode == 2, args
        assert errors(result) == [f"kefu: error: {config}: server.prot: unknown key (known: host, max_body_bytes, port)"]


def test_kefu_check_runs_the_checks_and_exits(tmp_path: Path, fast: str) -> None:
    port = free_port()
    good = kefu("check", "--config", str(write(tmp_path / "c.yaml", fast)), "--port", str(port))
    assert good.returncode == 0, good.stderr
    assert good.stdout == (f"kefu check: OK (config {tmp_path / 'c.yaml'}; store memory://; channels web;"
                           f" http://127.0.0.1:{port} is free; workers 1)\n")
    bad = kefu("serve", "--check", "--config", str(write(tmp_path / "b.yaml", fast + "store: {url: 'mysql://x'}\n")),
               "--workers", "0")
    assert bad.returncode == 2
    assert errors(bad) == ["kefu: error: --workers: must be at least 1, got 0",
                           "kefu: error: store.url: expected memory://, redis://host:port/db, rediss:// or unix://, "
                           "got 'mysql://x'"]


def test_business_actions_without_the_rasa_extra(tmp_path: Path) -> None:
    """rasa-sdk hidden from this interpreter, as on an install without ``kefu[rasa]``."""
    code = "import sys; sys.modules['rasa_sdk'] = None; from bot.cli import main; main()"
    result = subprocess.run([sys.executable, "-c", code, "--config", "examples/order_status/config.yaml", "chat"],
                            input="你好\n", capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert result.returncode == 2
    assert result.stderr == ("kefu: error: actions.module: business actions need rasa-sdk, which is not installed: "
                             "pip install 'kefu[rasa]' (or remove actions.module)\n")


def test_kb_export_into_a_closed_pipe_is_quiet(tmp_path: Path, fast: str) -> None:
    """``kefu kb export | head -1``: the reader leaves early; kefu stops without a word."""
    config = write(tmp_path / "c.yaml", fast)
    proc = subprocess.Popen([sys.executable, "-m", "bot", "kb", "export", "--config", str(config)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # like head after its one line, before kefu has written anything
    assert proc.stderr.read() == b""
    assert proc.wait(timeout=60) == 0


def test_serve_listens_only_once_it_can_answer(tmp_path: Path, cache_dir: Path) -> None:
    """Until "listening" is logged the port refuses connections; the first request after it is answered."""
    port = free_port()
    config = write(tmp_path / "c.yaml", f"knowledge: {{cache_dir: {cache_dir}}}\n")  # embeddings on: a real build
    log = tmp_path / "serve.log"
    with log.open("w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "bot", "serve", "--config", str(config), "--port", str(port)],
                                cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
    try:
        refused = 0
        deadline = time.monotonic() + 180
        while True:
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=30)
            except httpx.ConnectError:  # refused: not listening yet
                refused += 1
                time.sleep(0.05)
                continue
            break
        assert health.status_code == 200 and health.json()["knowledge_entries"] == 40  # the first accepted is answered
        assert refused > 0
        while "Kefu listening on" not in log.read_text():
            assert time.monotonic() < deadline
            time.sleep(0.05)
        text = log.read_text()
        assert text.index("building the search index") < text.index("indexed 40 entries") < text.index("listening")
        assert "Traceback" not in text
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def kb_file(path: Path, ids: list[str]) -> Path:
    return write(path, "".join(f"- id: {i}\n  questions: [问题{i}, question {i}]\n  answer: {{zh: 答{i}, en: answer {i}}}\n"
                               for i in ids))


def test_an_import_that_would_remove_entries_is_refused_and_says_what(tmp_path: Path, fast: str,
                                                                      private_redis: RedisProcess) -> None:
    config = str(write(tmp_path / "c.yaml", fast + f"store: {{url: '{private_redis.url}'}}\n"))
    six = ["a1", "a2", "a3", "a4", "a5", "a6"]
    first = kefu("kb", "import", str(kb_file(tmp_path / "six.yaml", six)), "--config", config)
    assert first.returncode == 0, first.stderr
    assert first.stdout == ("imported 6 entries (12 questions) from "
                            f"{tmp_path / 'six.yaml'}, 0 removed; knowledge version 1 (undo: kefu kb rollback 0)\n")
    before = kefu("kb", "list", "--config", config).stdout

    empty = write(tmp_path / "empty.yaml", "")
    refused = kefu("kb", "import", str(empty), "--config", config)
    assert refused.returncode == 2
    assert refused.stderr == (f"kefu: error: {empty} has no entries: importing it would remove 6 of the 6 stored "
                              "entries (a1, a2, a3, a4, a5, a6); nothing was changed. Check the file, or add "
                              "--replace-all to remove them (kefu kb save FILE adds and updates without removing)\n")
    one = kb_file(tmp_path / "one.yaml", ["a1"])
    refused = kefu("kb", "import", str(one), "--config", config)
    assert refused.returncode == 2
    assert "has 1 entries: importing it would remove 5 of the 6 stored entries (a2, a3, a4, a5, a6)" in refused.stderr
    assert kefu("kb", "list", "--config", config).stdout == before  # nothing was changed

    forced = kefu("kb", "import", str(one), "--replace-all", "--config", config)
    assert forced.returncode == 0, forced.stderr
    assert forced.stdout.endswith("5 removed; knowledge version 2 (undo: kefu kb rollback 1)\n")
    undone = kefu("kb", "rollback", "1", "--config", config)
    assert undone.returncode == 0, undone.stderr
    assert undone.stdout.endswith("rolled back 5 entries; knowledge version 3 (undo: kefu kb rollback 2)\n")
    assert kefu("kb", "list", "--config", config).stdout == before

    emptied = kefu("kb", "import", str(empty), "--replace-all", "--config", config)
    assert emptied.returncode == 0, emptied.stderr
    listing = kefu("kb", "list", "--config", config).stdout
    assert listing.startswith(f"# 0 entries from store {private_redis.url}\n")  # not the shipped FAQ


async def test_an_emptied_store_stays_empty_on_reload_and_restart(config: Config,
                                                                 private_redis: RedisProcess) -> None:
    """A running worker answers from the empty version, and a restart does not re-seed the FAQ."""
    from bot.runtime import Runtime
    from bot.storage.client import connect
    from knowledge.schema import KnowledgeBase
    from knowledge.service import KnowledgeService

    lexical = dataclasses.replace(config, intents=dataclasses.replace(config.intents, embeddings=False),
                                  store=StoreConfig(url=private_redis.url))
    runtime = await Runtime.start(lexical)
    assert len(runtime.knowledge.kb) == 40
    redis = connect(private_redis.url)
    change = await KnowledgeService(redis).replace_all(KnowledgeBase(()), "test")
    assert await runtime.reload_knowledge() is True
    assert len(runtime.knowledge.kb) == 0 and runtime.knowledge.version == change.version
    await runtime.close()
    restarted = await Runtime.start(lexical)
    assert len(restarted.knowledge.kb) == 0 and restarted.knowledge.version == change.version
    await restarted.close()
    await redis.aclose()


def test_kb_validate_reports_every_problem_with_entry_and_line(tmp_path: Path, fast: str) -> None:
    bad = write(tmp_path / "bad.yaml", """\
- id: return-policy
  questions: [怎么退货, 'How do I return an item?']
  answer: {zh: 七天内可退, en: Within 7 days}
- id: bad id
  questions: [q1]
  answer: x
- id: refunds
  questions: [怎么退货？]
  answer: {fr: Sous 7 jours}
- id: return-policy
  questions: [退货地址]
  answer: 仓库
""")
    result = kefu("kb", "validate", str(bad), "--config", str(write(tmp_path / "c.yaml", fast)))
    assert result.returncode == 2
    assert errors(result) == [
        f"kefu: error: {bad}: entry 2 (id 'bad id', line 4): 'id' 'bad id' is not a valid id: "
        "up to 128 characters, no spaces or '/'",
        f"kefu: error: {bad}: entry 3 (id 'refunds', line 7): 'answer.fr': unknown language 'fr'; use zh or en",
        f"kefu: error: {bad}: entry 4 (id 'return-policy', line 10): duplicate id 'return-policy' "
        "(first used by entry 1, line 1)",
    ]
    fixed = write(tmp_path / "dup.yaml", bad.read_text(encoding="utf-8").replace("bad id", "bad-id")
                  .replace("{fr: Sous 7 jours}", "{zh: 七天}").replace("id: return-policy\n  questions: [退货地址]",
                                                                   "id: address\n  questions: [退货地址]"))
    result = kefu("kb", "validate", str(fixed), "--config", str(tmp_path / "c.yaml"))
    assert result.returncode == 2
    assert errors(result) == [
        f"kefu: error: {fixed}: entry 3 (id 'refunds', line 7): question '怎么退货？' is also a question of entry "
        "'return-policy' (line 1); keep it in one entry, or the bot cannot tell them apart"]
    broken = write(tmp_path / "broken.yaml", "- id: a\n  questions: [q\n")
    result = kefu("kb", "validate", str(broken), "--config", str(tmp_path / "c.yaml"))
    assert result.returncode == 2 and errors(result) == [
        f"kefu: error: {broken}: not valid YAML: line 3, column 1: expected ',' or ']', but got '<stream end>'"]
    empty = write(tmp_path / "empty.yaml", "# nothing yet\n")
    result = kefu("kb", "validate", str(empty), "--config", str(tmp_path / "c.yaml"))
    assert result.returncode == 2 and errors(result) == [
        f"kefu: error: {empty}: no entries; a knowledge file is a YAML list of entries with id, questions and "
        "answer (importing this one would remove every stored entry)"]


async def test_a_token_telegram_rejects_at_start_is_one_line(tmp_path: Path, fast: str) -> None:
    """The check that needs Telegram itself (getMe) runs as the channel starts: still one line, exit 2."""
    import asyncio

    from tests.bot.channels.telegram_standin import BotApiStandIn

    async with BotApiStandIn() as standin:
        config = write(tmp_path / "c.yaml", fast + "channels:\n  telegram: {enabled: true, token: '999:wrong', "
                                                  f"base_url: '{standin.base_url}'}}\n")
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "serve", "--config", str(config), "--port", str(free_port()), cwd=ROOT,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        _, stderr = await asyncio.wait_for(proc.communicate(), 120)
    text = stderr.decode()
    assert proc.returncode == 2, text
    assert "Traceback" not in text and "Kefu listening" not in text
    assert errors_of(text) == ["kefu: error: channels.telegram.token: Telegram rejected the token "
                               "(The token `999:wrong` was rejected by the server.)"]
    assert text.endswith("\n") and text.splitlines()[-1].startswith("kefu: error: ")


def test_files_and_ports_named_on_the_command_line(tmp_path: Path, fast: str) -> None:
    config = str(write(tmp_path / "c.yaml", fast + "store: {url: 'redis://127.0.0.1:1/0'}\n"))
    # validating a file needs no store: an unreachable Redis does not stop it
    result = kefu("kb", "validate", str(tmp_path), "--config", config)
    assert result.returncode == 2 and result.stderr == f"kefu: error: {tmp_path}: Is a directory\n"
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    try:
        port = busy.getsockname()[1]
        result = kefu("actions", "--port", str(port), "--config", str(write(tmp_path / "ok.yaml", fast)))
        assert result.returncode == 2
        assert result.stderr == (f"kefu: error: --port: port {port} on 127.0.0.1 is already in use "
                                 "(another kefu serve?); stop it or choose a free port\n")
    finally:
        busy.close()


def test_a_mistyped_command_line_is_one_line_with_where_the_help_is() -> None:
    result = kefu("serve", "--port", "abc")
    assert result.returncode == 2
    assert result.stderr == "kefu: error: argument --port: invalid int value: 'abc' (see kefu serve --help)\n"
    result = kefu("kb")
    assert result.stderr == "kefu: error: the following arguments are required: kb_command (see kefu kb --help)\n"



def test_a_redis_password_never_appears_in_a_message(tmp_path: Path, fast: str) -> None:
    port = closed_port()
    config = write(tmp_path / "c.yaml", fast + f"store: {{url: 'redis://:s3cret-pw@127.0.0.1:{port}/0'}}\n")
    result = kefu("check", "--config", str(config))
    assert result.returncode == 2 and "s3cret-pw" not in result.stderr
    assert errors(result)[0].startswith(f"kefu: error: store.url: cannot reach Redis at redis://:***@127.0.0.1:{port}/0 (")


def test_on_a_terminal_the_index_build_shows_a_progress_bar(tmp_path: Path) -> None:
    """stderr a terminal (a pty with a window size): tqdm's bar while the phrasings are embedded."""
    import fcntl
    import pty
    import struct
    import termios

    kb = write(tmp_path / "kb.yaml", "".join(f"- id: e{i}\n  questions: [第{i}个问题是什么]\n  answer: 答案{i}\n"
                                             for i in range(65)))  # > 64 texts to embed: the bar's threshold
    config = write(tmp_path / "c.yaml", f"knowledge: {{cache_dir: {tmp_path / 'fresh-cache'}, path: {kb}}}\n")
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 120, 0, 0))
    proc = subprocess.Popen([sys.executable, "-m", "bot", "serve", "--config", str(config), "--port", str(free_port())],
                            cwd=ROOT, stdout=follower, stderr=follower, stdin=subprocess.DEVNULL)
    os.close(follower)
    seen = b""
    try:
        deadline = time.monotonic() + 120
        while b"Kefu listening on" not in seen:
            assert time.monotonic() < deadline and proc.poll() is None, seen.decode(errors="replace")
            seen += os.read(leader, 65536)
        text = seen.decode(errors="replace")
        assert re.search(r"embedding phrasings: 100%\|█+\| \d+/\d+", text), text
        assert text.index("building the search index") < text.index("embedding phrasings") < text.index("listening")
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        os.close(leader)


def test_kb_save_refuses_a_question_another_stored_entry_has(tmp_path: Path, fast: str,
                                                             private_redis: RedisProcess) -> None:
    config = str(write(tmp_path / "c.yaml", fast + f"store: {{url: '{private_redis.url}'}}\n"))
    assert kefu("kb", "import", str(kb_file(tmp_path / "two.yaml", ["a1", "a2"])), "--config", config).returncode == 0
    clash = write(tmp_path / "new.yaml", "- id: b1\n  questions: [新问题, question a2]\n  answer: 答\n")
    result = kefu("kb", "save", str(clash), "--config", config)
    assert result.returncode == 2
    assert errors(result) == [f"kefu: error: {clash}: entry 'b1': question 'question a2' is also a question of "
                              "entry 'a2'; keep it in one entry, or the bot cannot tell them apart"]
    assert "b1" not in kefu("kb", "list", "--config", config).stdout
    ok = write(tmp_path / "ok.yaml", "- id: b1\n  questions: [新问题]\n  answer: 答\n")
    saved = kefu("kb", "save", str(ok), "--config", config)
    assert saved.stdout == ("save: 1 entry changed; knowledge version 2 (every worker answers from it within seconds; "
                            "undo: kefu kb rollback 1)\n")
