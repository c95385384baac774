"""``/metrics`` across ``kefu serve --workers 2`` on real Redis: one scrape, whichever worker
answers it, counts every turn that any worker handled."""

from __future__ import annotations

import collections
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.bot.agents.test_workers import wipe
from tests.bot.test_scale import chat, serve_config, worker_pids
from tests.browser import ROOT, free_port, kefu_server
from tests.conftest import REDIS_URL, require_redis

pytestmark = pytest.mark.redis


def scrape(base: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    r = httpx.get(f"{base}/metrics", headers={"Connection": "close"}, timeout=30)
    assert r.status_code == 200, r.text
    samples: dict[str, list[tuple[dict[str, str], float]]] = collections.defaultdict(list)
    for family in text_string_to_metric_families(r.text):
        for sample in family.samples:
            samples[sample.name].append((sample.labels, sample.value))
    return samples


def total(samples: list[tuple[dict[str, str], float]], **labels: str) -> float:
    return sum(value for have, value in samples if all(have.get(k) == v for k, v in labels.items()))


def outcome(body: dict[str, object]) -> str:
    decision = body["decision"]
    if not isinstance(decision, dict):
        return "agent"
    return "handoff" if body["state"] == "waiting" else str(decision["action"])


def test_one_scrape_counts_the_turns_of_both_workers(tmp_path: Path, cache_dir: Path) -> None:
    require_redis()
    wipe()
    try:
        with kefu_server(serve_config(cache_dir, REDIS_URL), tmp_path, "--workers", "2") as base:
            pids = worker_pids(base)

            sent: collections.Counter[str] = collections.Counter()
            for n in range(4):
                for text in ("你好", "怎么退货", "退款多久到账"):
                    r = chat(base, f"metrics-customer-{n}", text)
                    assert r.status_code == 200, r.text
                    sent[outcome(r.json())] += 1
                r = chat(base, f"metrics-handoff-{n}", "转人工")  # a fresh connection per turn: any worker
                assert r.json()["state"] == "waiting"
                sent[outcome(r.json())] += 1
                r = chat(base, f"metrics-handoff-{n}", "还在吗")  # joins the ticket, not the bot
                sent[outcome(r.json())] += 1
            assert sum(sent.values()) == 20 and sent["handoff"] == 4 and sent["agent"] == 4

            scrapes = [scrape(base) for _ in range(6)]  # several scrapes: they land on both workers
            for samples in scrapes:
                turns = samples["kefu_turns_total"]
                assert total(turns) == 20
                for name, count in sent.items():
                    assert total(turns, channel="web", outcome=name) == count, name
                assert total(samples["kefu_handoffs_total"], reason="human_request") == 4
                assert total(samples["kefu_turn_seconds_count"], channel="web") == 20
                assert total(samples["kefu_intent_decision_seconds_count"]) == 16  # the bot decided 16 of them
                assert total(samples["kefu_tickets_total"], event="opened") == 4
                assert total(samples["kefu_queue_length"]) == 4
                assert total(samples["kefu_queue_oldest_wait_seconds"]) > 0
                versions = samples["kefu_knowledge_version"]
                assert {labels["pid"] for labels, _ in versions} == {str(pid) for pid in pids}
                assert len({value for _, value in versions}) == 1  # every worker answers from one version
    finally:
        wipe()


def test_metrics_on_an_admin_only_listener_and_not_on_the_public_port(tmp_path: Path, cache_dir: Path) -> None:
    require_redis()
    wipe()
    metrics_port = free_port()
    config = serve_config(cache_dir, REDIS_URL) + f"metrics:\n  listen: 127.0.0.1:{metrics_port}\n"
    try:
        with kefu_server(config, tmp_path, "--workers", "2") as base:
            assert httpx.get(f"{base}/metrics").status_code == 404  # not on the public port
            for n in range(3):
                assert chat(base, f"listener-customer-{n}", "怎么退货").status_code == 200
            assert chat(base, "listener-handoff", "转人工").json()["state"] == "waiting"
            samples = scrape(f"http://127.0.0.1:{metrics_port}")  # no token: the address is the protection
            assert total(samples["kefu_turns_total"]) == 4
            assert total(samples["kefu_turns_total"], outcome="handoff") == 1
            assert total(samples["kefu_queue_length"]) == 1 and total(samples["kefu_store_up"]) == 1
    finally:
        wipe()


def test_a_bad_metrics_listener_is_one_clear_line(tmp_path: Path, cache_dir: Path) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text(f"knowledge:\n  cache_dir: {cache_dir}\nmetrics:\n  listen: localhost\n", encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "bot", "--config", str(config), "serve", "--port", str(free_port())],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert done.stderr.strip().splitlines()[-1] == (
        "kefu: error: metrics.listen: expected HOST:PORT (e.g. 127.0.0.1:9464), got 'localhost'")


def test_each_turn_is_counted_in_its_own_series_and_nothing_when_disabled() -> None:
    """The remembered label series (``metrics.series``) count each channel/outcome apart, like
    ``labels()`` did; with ``metrics.enabled: false`` nothing is recorded at all."""
    from prometheus_client import REGISTRY

    from bot import metrics
    from bot.types import Action, Conversation, Decision, HandoffRequest, InboundMessage, Intent, TurnResult

    def sample(name: str, **labels: str) -> float:
        return REGISTRY.get_sample_value(name, labels) or 0.0

    conv = Conversation.start(InboundMessage("web", "u", "u", "how do returns work", "m"))
    answer = TurnResult((), conv, Decision(Action.ANSWER, "en", Intent.FAQ, 0.9, entry_id="returns"))
    handoff = TurnResult((), conv, Decision(Action.HANDOFF, "en", Intent.ASKED_FOR_HUMAN, 1.0),
                         HandoffRequest("human_request", "asked for a human"))
    names = [("kefu_turns_total", {"channel": "web", "outcome": "answer"}),
             ("kefu_turns_total", {"channel": "telegram", "outcome": "answer"}),
             ("kefu_turns_total", {"channel": "web", "outcome": "handoff"}),
             ("kefu_handoffs_total", {"channel": "web", "reason": "human_request"}),
             ("kefu_turn_seconds_count", {"channel": "web"}),
             ("kefu_turn_seconds_sum", {"channel": "web"})]
    before = [sample(name, **labels) for name, labels in names]
    try:
        for _ in range(3):
            assert metrics.observe_turn("web", answer, 0.5) == "answer"
        assert metrics.observe_turn("telegram", answer, 0.5) == "answer"
        assert metrics.observe_turn("web", handoff, 0.5) == "handoff"
        after = [sample(name, **labels) - was for (name, labels), was in zip(names, before, strict=True)]
        assert after == [3, 1, 1, 1, 4, 2.0]
        assert metrics.series(metrics.TURNS, "web", "answer") is metrics.TURNS.labels("web", "answer")

        metrics.configure(False)
        assert metrics.observe_turn("web", handoff, 0.5) == "handoff"  # still the log line's outcome
        assert [sample(name, **labels) - was for (name, labels), was in zip(names, before, strict=True)] == after
    finally:
        metrics.configure(True)
