"""``kefu kb import`` is audited; ``kefu kb history`` and ``kefu kb rollback`` as an operator runs them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.bot.agents.test_workers import wipe
from tests.bot.test_cli import kefu
from tests.conftest import REDIS_URL, require_redis

pytestmark = pytest.mark.redis
TWO_ENTRIES = ("- id: hours\n  questions: [几点上班]\n  answer: 九点上班。\n"
               "- id: fee\n  questions: [运费多少]\n  answer: 满99包邮。\n")


@pytest.fixture
def config_file(tmp_path: Path, cache_dir: Path) -> Iterator[Path]:
    """A config file on the real Redis (Kefu's keys wiped before and after)."""
    require_redis()
    wipe()
    path = tmp_path / "config.yaml"
    path.write_text(f"store:\n  url: {REDIS_URL}\nknowledge:\n  cache_dir: {cache_dir}\n", encoding="utf-8")
    yield path
    wipe()


def test_import_history_and_rollback(tmp_path: Path, cache_dir: Path, config_file: Path) -> None:
    config = config_file
    first = tmp_path / "v1.yaml"
    first.write_text(TWO_ENTRIES, encoding="utf-8")
    second = tmp_path / "v2.yaml"
    second.write_text("- id: hours\n  questions: [几点上班]\n  answer: 八点上班。\n", encoding="utf-8")
    assert kefu("kb", "import", str(first), cache=cache_dir, config=config).returncode == 0
    done = kefu("kb", "import", str(second), cache=cache_dir, config=config)
    assert done.returncode == 0 and "knowledge version 2" in done.stdout, done.stdout + done.stderr

    history = kefu("kb", "history", cache=cache_dir, config=config).stdout.splitlines()
    assert history[0].startswith("# knowledge version 2")
    assert any("v2" in line and "import" in line and "hours [answer]" in line for line in history)
    assert any("v2" in line and "fee" in line for line in history)
    only = kefu("kb", "history", "fee", cache=cache_dir, config=config).stdout
    assert "hours" not in only and "fee" in only

    back = kefu("kb", "rollback", "1", cache=cache_dir, config=config)
    assert back.returncode == 0, back.stderr
    assert "rolled back 2 entries; knowledge version 3" in back.stdout
    listing = kefu("kb", "list", cache=cache_dir, config=config).stdout
    assert "hours" in listing and "fee" in listing
    exported = kefu("kb", "export", cache=cache_dir, config=config).stdout
    assert "九点上班" in exported and "八点上班" not in exported

    entry = kefu("kb", "rollback", "2", "--entry", "hours", cache=cache_dir, config=config)
    assert "hours: restored" in entry.stdout
    assert "八点上班" in kefu("kb", "export", cache=cache_dir, config=config).stdout
    missing = kefu("kb", "rollback", "99", cache=cache_dir, config=config)
    assert missing.returncode == 2 and "no version 99" in missing.stderr


def test_edit_entries_from_the_terminal(tmp_path: Path, cache_dir: Path, config_file: Path) -> None:
    config = config_file
    base = tmp_path / "base.yaml"
    base.write_text(TWO_ENTRIES, encoding="utf-8")
    edit = tmp_path / "edit.yaml"
    edit.write_text("- id: fee\n  questions: [运费多少]\n  answer: {zh: 满59包邮。, en: Free shipping over 59.}\n"
                    "- id: invoice\n  questions: [怎么开发票]\n  answer: 在订单详情里申请。\n", encoding="utf-8")
    broken = tmp_path / "broken.yaml"
    broken.write_text("- id: fee\n  questions: []\n  answer: x\n", encoding="utf-8")

    def run(*args: str) -> str:
        done = kefu("kb", *args, cache=cache_dir, config=config)
        assert done.returncode == 0, done.stderr
        return done.stdout

    run("import", str(base))
    assert "2 entries changed" in run("save", str(edit))  # fee updated, invoice created, hours kept
    refused = kefu("kb", "save", str(broken), cache=cache_dir, config=config)
    assert refused.returncode == 2 and "questions" in refused.stderr  # nothing half-saved
    assert "1 entry changed" in run("add-question", "fee", "包邮吗", "Is shipping free?")
    run("remove-question", "fee", "包邮吗")
    run("disable", "hours")
    run("delete", "invoice")
    listing = run("list")
    assert "[disabled]" in listing.split("hours")[1].splitlines()[0] and "invoice" not in listing
    assert "fee" in run("search", "shipping free") or "fee" in run("search", "59")
    exported = run("export")
    assert "满59包邮" in exported and "Is shipping free?" in exported and "包邮吗" not in exported
    history = run("history")
    for action in ("cli-save", "add-questions", "remove-question", "disable", "delete"):
        assert action in history, action
    missing = kefu("kb", "delete", "no-such-entry", cache=cache_dir, config=config)
    assert missing.returncode == 2 and "no-such-entry" in missing.stderr
