"""The committed Grafana dashboard and alert rules only use metrics Kefu really exports, and
have the shape Grafana's import and Prometheus' rule loader expect."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import yaml
from prometheus_client.parser import text_string_to_metric_families
from starlette.testclient import TestClient

from bot.app import create_app
from bot.config import Config, IntentsConfig, KnowledgeConfig, MetricsConfig

DOCS = Path(__file__).resolve().parents[2] / "docs" / "grafana"
METRIC = re.compile(r"\bkefu_[a-z_]+\b")
SUFFIXES = {"counter": ("_total", "_created"), "histogram": ("_bucket", "_sum", "_count", "_created"),
            "gauge": ("",)}


def exported_names(cache_dir: Path) -> set[str]:
    config = dataclasses.replace(Config(knowledge=KnowledgeConfig(cache_dir=str(cache_dir)),
                                        intents=IntentsConfig(embeddings=False)), metrics=MetricsConfig(token="t"))
    with TestClient(create_app(config)) as client:
        text = client.get("/metrics", headers={"Authorization": "Bearer t"}).text
    names = set()
    for family in text_string_to_metric_families(text):
        names |= {family.name + suffix for suffix in SUFFIXES.get(family.type, ("",))}
    return names


def test_dashboard_panels_query_exported_metrics(cache_dir: Path) -> None:
    dashboard = json.loads((DOCS / "kefu-dashboard.json").read_text(encoding="utf-8"))
    assert dashboard["uid"] and dashboard["schemaVersion"] >= 36 and dashboard["panels"]
    exported = exported_names(cache_dir)
    used: set[str] = set()
    for panel in dashboard["panels"]:
        assert {"id", "type", "title", "gridPos", "targets"} <= set(panel), panel.get("title")
        assert panel["type"] in {"timeseries", "stat"}
        for target in panel["targets"]:
            used |= set(METRIC.findall(target["expr"]))
    assert used - exported == set()
    for wanted in ("kefu_turns_total", "kefu_turn_seconds_bucket", "kefu_intent_decision_seconds_bucket",
                   "kefu_queue_length", "kefu_queue_oldest_wait_seconds", "kefu_agents_online", "kefu_tickets_total",
                   "kefu_csat_ratings_total", "kefu_send_failures_total", "kefu_held_messages",
                   "kefu_redis_errors_total", "kefu_knowledge_version", "kefu_rate_limited_messages_total",
                   "kefu_handoffs_total"):
        assert wanted in used, f"the dashboard should show {wanted}"


def test_alert_rules_cover_the_pages_and_use_exported_metrics(cache_dir: Path) -> None:
    rules = yaml.safe_load((DOCS / "kefu-alerts.yml").read_text(encoding="utf-8"))
    exported = exported_names(cache_dir)
    alerts = {rule["alert"]: rule for group in rules["groups"] for rule in group["rules"]}
    assert {"KefuNotReady", "KefuQueueWaitOverSla", "KefuPlatformSendFailures", "KefuRedisErrors"} <= set(alerts)
    for name, rule in alerts.items():
        assert {"expr", "for", "labels", "annotations"} <= set(rule), name
        assert rule["labels"]["severity"] in {"page", "warning"}
        assert set(METRIC.findall(rule["expr"])) - exported == set(), name
