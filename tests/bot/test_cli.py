"""The ``kefu`` command as a user runs it: real subprocesses, pipes and files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot import keys
from tests.conftest import REDIS_URL, require_redis

ROOT = Path(__file__).resolve().parents[2]


def kefu(*args: str, stdin: str = "", cache: Path, config: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``python -m bot`` with ``config`` (default: built-in defaults, test cache dir)."""
    if config is None:
        config = cache / "config.yaml"
        config.write_text(f"knowledge:\n  cache_dir: {cache}\n", encoding="utf-8")
    return subprocess.run([sys.executable, "-m", "bot", "--config", str(config), *args], input=stdin,
                          capture_output=True, text=True, timeout=240, cwd=ROOT, env=dict(os.environ))


def test_chat_through_a_pipe(cache_dir: Path) -> None:
    result = kefu("chat", stdin="你好\n怎么退货\n我要投诉你们，太差劲了\n", cache=cache_dir)
    assert result.returncode == 0, result.stderr
    replies = [line for line in result.stdout.splitlines() if line.startswith("kefu> ")]
    assert len(replies) == 3
    assert "退" in replies[1]
    assert "人工客服" in replies[2] and "抱歉" in replies[2]
    assert "handed off to a human agent: complaint" in result.stdout
    assert "not durable" not in result.stdout  # warnings go to stderr, replies to stdout
    assert "memory://" in result.stderr


def test_eval_writes_one_decision_per_case(tmp_path: Path, cache_dir: Path) -> None:
    cases = tmp_path / "cases.jsonl"
    cases.write_text("\n".join(json.dumps(c, ensure_ascii=False) for c in [
        {"text": "怎么退货", "expect": "return-policy"},
        {"text": "我要投诉，你们就是骗子", "expect": "handoff"},
        {"text": "帮我写一首关于月亮的诗", "expect": "no-answer"},
    ]) + "\n", encoding="utf-8")
    kb = tmp_path / "kb.yaml"
    kb.write_text("- id: return-policy\n  questions:\n    - 怎么退货\n    - how do I return an item\n"
                  "  answer: {zh: 七天内可退, en: Within 7 days}\n"
                  "- id: shipping-fee\n  questions:\n    - 运费多少\n    - how much is shipping\n"
                  "  answer: {zh: 满99包邮, en: Free over 99}\n", encoding="utf-8")
    out = tmp_path / "decisions.jsonl"
    result = kefu("eval", str(cases), "--kb", str(kb), "--out", str(out), cache=cache_dir)
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [r["text"] for r in rows] == ["怎么退货", "我要投诉，你们就是骗子", "帮我写一首关于月亮的诗"]
    assert set(rows[0]) == {"text", "action", "intent", "entry_id", "suggestions", "reason", "confidence", "ms"}
    assert rows[0]["action"] == "answer" and rows[0]["entry_id"] == "return-policy"
    assert rows[1]["action"] == "handoff"
    assert rows[2]["action"] != "answer"
    assert "answer accuracy (in-scope)" in result.stdout and "handoff recall" in result.stdout
    assert "100.0% (1/1)" in result.stdout


def test_kb_validate_reports_the_bad_entry(tmp_path: Path, cache_dir: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("- id: ok\n  questions: [q]\n  answer: a\n- id: broken\n  questions: [q]\n", encoding="utf-8")
    result = kefu("kb", "validate", str(bad), cache=cache_dir)
    assert result.returncode == 2
    assert "entry 2 (id 'broken', line 4)" in result.stderr
    assert "Traceback" not in result.stderr


def test_bad_config_is_one_clear_line(tmp_path: Path, cache_dir: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("server:\n  prot: 80\n", encoding="utf-8")
    result = kefu("chat", cache=cache_dir, config=config)
    assert result.returncode == 2
    assert result.stderr.strip().endswith("server.prot: unknown key (known: host, max_body_bytes, port)")
    assert "Traceback" not in result.stderr


def test_kb_import_list_export_on_real_redis(tmp_path: Path, cache_dir: Path) -> None:
    require_redis()
    import redis

    redis.Redis.from_url(REDIS_URL).delete(keys.kb_entries(), keys.kb_version())
    config = tmp_path / "config.yaml"
    config.write_text(f"store:\n  url: {REDIS_URL}\nknowledge:\n  cache_dir: {cache_dir}\n", encoding="utf-8")
    kb = tmp_path / "kb.yaml"
    kb.write_text("- id: hours\n  questions: [几点上班, opening hours]\n  answer: {zh: 九点, en: nine}\n", encoding="utf-8")
    bad = tmp_path / "bad.yaml"
    bad.write_text("- id: hours\n  questions: [q]\n  answer: a\n- id: x\n", encoding="utf-8")

    assert kefu("kb", "import", str(bad), cache=cache_dir, config=config).returncode == 2
    listing = kefu("kb", "list", cache=cache_dir, config=config)
    assert "the store is empty" in listing.stdout  # nothing half-imported

    imported = kefu("kb", "import", str(kb), cache=cache_dir, config=config)
    assert imported.returncode == 0, imported.stderr
    assert "imported 1 entries" in imported.stdout
    listing = kefu("kb", "list", cache=cache_dir, config=config)
    assert "hours" in listing.stdout and "1 entries from store" in listing.stdout
    exported = tmp_path / "out.yaml"
    assert kefu("kb", "export", "--out", str(exported), cache=cache_dir, config=config).returncode == 0
    assert "几点上班" in exported.read_text(encoding="utf-8")
    redis.Redis.from_url(REDIS_URL).delete(keys.kb_entries(), keys.kb_version())


def test_kb_import_into_memory_store_is_refused(tmp_path: Path, cache_dir: Path) -> None:
    kb = tmp_path / "kb.yaml"
    kb.write_text("- id: hours\n  questions: [q]\n  answer: a\n", encoding="utf-8")
    result = kefu("kb", "import", str(kb), cache=cache_dir)
    assert result.returncode == 2 and "memory://" in result.stderr


@pytest.mark.parametrize("args", [["--help"], ["kb", "--help"]])
def test_help(args: list[str], cache_dir: Path) -> None:
    result = kefu(*args, cache=cache_dir)
    assert result.returncode == 0 and "usage" in result.stdout
