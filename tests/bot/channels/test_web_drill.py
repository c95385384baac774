"""Issue 15.1 as a drill: ``kefu serve --workers 2`` on a private Redis, 30 web customers writing
510 messages while a worker is SIGKILLed mid-turn (and its replacement starts while Redis is
down), Redis is SIGKILLed (restarted from its AOF) and then SIGSTOPped for 4 s.  Clients resend
like the chat page.  Nothing may be lost or answered twice.  Without the in-progress answer (409
"retry") 25 of 510 were lost in this drill; without the "already saved" check one was answered
twice; before workers waited for the store, the replacement's failed start stopped ``kefu serve``."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from bench.drill_web import drill


def test_worker_and_redis_killed_mid_turn_lose_nothing_and_answer_nothing_twice(tmp_path: Path,
                                                                                cache_dir: Path) -> None:
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server not installed")
    counts = drill(customers=30, messages=17, workdir=tmp_path, cache_dir=cache_dir)
    assert counts.sent == 510 and counts.customers == 30
    assert counts.cut_off_by_worker_kill > 0, counts.faults  # the kill did land on turns in flight
    assert "the replacement worker waited for redis" in " ".join(counts.faults)
    assert counts.told_to_retry_in_progress > 0 and counts.unavailable_503 > 0  # the faults were felt
    assert counts.gave_up == []
    assert (counts.answered, counts.lost, counts.answered_twice) == (510, 0, 0), counts
