"""Prometheus metrics (``GET /metrics``), through ``prometheus_client``.

With ``kefu serve --workers N`` each worker writes its samples to memory-mapped files in
``PROMETHEUS_MULTIPROC_DIR`` (set by the parent before the workers start) and whichever worker
answers a scrape merges every worker's files: one consistent view, whatever worker the scrape
lands on.  Shared state that lives in Redis (queue length, oldest wait, agents online) is read
at scrape time instead of being counted, so every worker reports the same value.

The recording functions are cheap (a lock and an add per value: about 8 µs of CPU for a turn in
one process, 12 µs with the files; ``python -m bench.turncost --record-cost 20000``) and no-ops
when ``metrics.enabled`` is false; they never raise into a customer's turn.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TypeVar

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, multiprocess
from prometheus_client.core import GaugeMetricFamily, Metric

from bot.types import Action, Role, TurnResult

log = logging.getLogger(__name__)

MULTIPROCESS = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# A repeated question is decided in well under a millisecond, a new one in 10-60 ms; a turn
# that waits for a business action or Rasa may take seconds.
DECIDE_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
TURN_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

TURNS = Counter("kefu_turns_total", "Customer messages the engine handled, by channel and outcome",
                ["channel", "outcome"])
HANDOFFS = Counter("kefu_handoffs_total", "Conversations handed to a human, by channel and reason",
                   ["channel", "reason"])
TURN_SECONDS = Histogram("kefu_turn_seconds", "Whole-turn latency (dedupe, lock, decide, save)", ["channel"],
                         buckets=TURN_BUCKETS)
DECIDE_SECONDS = Histogram("kefu_intent_decision_seconds", "Intent-layer decision latency", buckets=DECIDE_BUCKETS)
RATE_LIMITED = Counter("kefu_rate_limited_messages_total", "Messages over security.rate_limit_per_minute",
                       ["channel"])
TICKETS = Counter("kefu_tickets_total", "Handoff tickets by event (opened, claimed, resolved, ...)", ["event"])
RATINGS = Counter("kefu_csat_ratings_total", "Satisfaction survey answers, by rating 1-5", ["rating"])
SEND_FAILURES = Counter("kefu_send_failures_total", "Platform sends that failed (retried or queued)", ["channel"])
HELD = Gauge("kefu_held_messages", "Work held in workers until Redis or a platform answers", ["queue"],
             multiprocess_mode="livesum")
REDIS_ERRORS = Counter("kefu_redis_errors_total", "Redis calls that failed (store unavailable)", ["where"])
KNOWLEDGE_VERSION = Gauge("kefu_knowledge_version", "Knowledge version this worker answers from",
                          multiprocess_mode="liveall")

_enabled = True
_Metric = TypeVar("_Metric", Counter, Gauge, Histogram)
_series: dict[tuple[object, ...], object] = {}


def series(metric: _Metric, *labels: str) -> _Metric:
    """``metric.labels(*labels)``, remembered: prometheus_client checks the labels and takes a lock
    on every ``labels()`` call, which was a third of a turn's recording.  Every label here has a
    bounded set of values (channels, outcomes, reasons, events)."""
    key = (metric, *labels)
    child = _series.get(key)
    if child is None:
        child = _series[key] = metric.labels(*labels)
    return child  # type: ignore[return-value]  # keyed by its own metric: the same type


def configure(enabled: bool) -> None:
    """Turn recording on or off for this process (``metrics.enabled``)."""
    global _enabled
    _enabled = enabled


def enabled() -> bool:
    return _enabled


def outcome_of(result: TurnResult) -> str:
    """The turn's outcome label: answer / clarify / handoff / smalltalk / off_topic for the bot's
    decisions; agent (the message joined a human's ticket), rate_limited or survey otherwise."""
    decision = result.decision
    if decision is not None:
        if "off_topic" in (decision.intent, decision.reason):
            return "off_topic"
        if decision.action is Action.HANDOFF or result.handoff is not None:
            return "handoff"
        return decision.action.value
    for line in reversed(result.conversation.transcript):
        if line.role is Role.CUSTOMER:
            if line.meta.get("rate_limited"):
                return "rate_limited"
            if line.meta.get("kind") == "survey_answer":
                return "survey"
            break
    return "agent"


def observe_turn(channel: str, result: TurnResult, seconds: float) -> str:
    """Record one finished turn; returns its outcome label (for the turn's log line)."""
    outcome = outcome_of(result)
    if not _enabled:
        return outcome
    try:
        series(TURNS, channel, outcome).inc()
        series(TURN_SECONDS, channel).observe(seconds)
        if result.handoff is not None:
            series(HANDOFFS, channel, result.handoff.reason or "unknown").inc()
        elif outcome == "rate_limited":
            series(RATE_LIMITED, channel).inc()
    except Exception:  # a statistic must never fail a customer's turn
        log.exception("turn not recorded in the metrics")
    return outcome


def observe_decision(seconds: float) -> None:
    if _enabled:
        DECIDE_SECONDS.observe(seconds)


def ticket_event(event: str, rating: object = None) -> None:
    """A desk event as published to the consoles (opened, claimed, resolved, rating...)."""
    if not _enabled:
        return
    if event == "rating":
        if isinstance(rating, int) and 1 <= rating <= 5:
            series(RATINGS, str(rating)).inc()
        return
    series(TICKETS, event).inc()


def send_failure(channel: str) -> None:
    if _enabled:
        series(SEND_FAILURES, channel).inc()


def held(queue: str, count: int) -> None:
    """Items a worker's held-work queue (``telegram``, ``wechat sends``...) holds now."""
    if _enabled:
        series(HELD, queue).set(count)


def redis_error(where: str) -> None:
    if _enabled:
        series(REDIS_ERRORS, where).inc()


def knowledge_version(version: int) -> None:
    if _enabled:
        KNOWLEDGE_VERSION.set(version)


@dataclass(frozen=True)
class DeskSnapshot:
    """The human desk as Redis has it at scrape time (the same whichever worker answers)."""

    queue_length: int
    oldest_wait_seconds: float
    agents_online: int


class _Fixed:
    """A collector yielding metric families computed before the scrape."""

    def __init__(self, families: Sequence[Metric]) -> None:
        self.families = families

    def collect(self) -> Iterator[Metric]:
        yield from self.families


def desk_families(snapshot: DeskSnapshot | None) -> list[Metric]:
    if snapshot is None:
        return []
    return [GaugeMetricFamily("kefu_queue_length", "Tickets waiting for an agent", value=snapshot.queue_length),
            GaugeMetricFamily("kefu_queue_oldest_wait_seconds", "How long the longest-waiting ticket has waited",
                              value=snapshot.oldest_wait_seconds),
            GaugeMetricFamily("kefu_agents_online", "Agents with a console connected recently",
                              value=snapshot.agents_online),
            GaugeMetricFamily("kefu_scrape_timestamp_seconds", "When this worker read the desk state",
                              value=time.time())]


def recorded() -> list[Metric]:
    """Every worker's samples (multiprocess: read from the files now) or this process's."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):  # at call time: the serving parent sets it late
        return list(multiprocess.MultiProcessCollector(None).collect())  # type: ignore[no-untyped-call, unused-ignore]
    from prometheus_client import REGISTRY

    return list(REGISTRY.collect())


def render(extra: Iterable[Metric] = ()) -> bytes:
    """The exposition text: :func:`recorded` plus ``extra``."""
    registry = CollectorRegistry()
    registry.register(_Fixed([*recorded(), *extra]))
    return generate_latest(registry)


def worker_exited(pid: int) -> None:
    """Drop a stopped worker's live gauges (held messages, knowledge version) from the view."""
    if MULTIPROCESS:
        multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call, unused-ignore]
