from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest
import yaml

from bot.config import Config, load_config, parse_config
from bot.errors import ConfigError


def test_defaults_need_no_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    config = load_config()
    assert config == Config()
    assert config.store.url == "memory://"


def test_shipped_config_yaml_is_valid_and_matches_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith(("TELEGRAM_", "WECHAT_", "WECOM_")):
            monkeypatch.delenv(name)
    config = load_config(Path(__file__).resolve().parents[2] / "config.yaml")
    assert config == Config()


def _leaf_keys(value: object, prefix: str = "") -> set[str]:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        keys: set[str] = set()
        for f in dataclasses.fields(value):
            if f.compare:
                keys |= _leaf_keys(getattr(value, f.name), f"{prefix}{f.name}.")
        return keys
    return {prefix.rstrip(".")}


def test_shipped_config_yaml_documents_every_key() -> None:
    data = yaml.safe_load((Path(__file__).resolve().parents[2] / "config.yaml").read_text(encoding="utf-8"))

    def present(path: str) -> bool:
        node = data
        for part in path.split("."):
            if not isinstance(node, dict) or part not in node:
                return False
            node = node[part]
        return True

    missing = sorted(key for key in _leaf_keys(Config()) if not present(key))
    assert missing == []


def test_env_substitution(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KEFU_TEST_TOKEN", "s3cret")
    config = parse_config({"channels": {"telegram": {"token": "${KEFU_TEST_TOKEN}", "enabled": "yes"}},
                           "server": {"port": "${KEFU_TEST_PORT:-9000}"}})
    assert config.channels.telegram.token == "s3cret"
    assert config.channels.telegram.enabled is True
    assert config.server.port == 9000


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"sever": {}}, "sever: unknown key"),
        ({"server": {"prot": 1}}, "server.prot: unknown key"),
        ({"server": {"port": "eighty"}}, "server.port: expected a number"),
        ({"channels": {"telegram": {"enabled": "maybe"}}}, "channels.telegram.enabled: expected true or false"),
        ({"store": {"url": ["x"]}}, "store.url: expected a string"),
        ({"channels": {"wechat": {"token": "${KEFU_MISSING_VAR}"}}},
         "channels.wechat.token: environment variable KEFU_MISSING_VAR is not set"),
        ({"intents": {"thresholds": {"answer": -1}}}, "intents.thresholds.answer: must not be negative"),
        ([1, 2], "config: expected a mapping"),
    ],
)
def test_errors_name_the_key(data: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace(".", r"\.")):
        parse_config(data)


def test_missing_file_and_bad_yaml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("server: [", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)


# --- one place for the rules: the shape (pydantic, when parsed) and each section's problems() ---------------

def test_the_first_problem_reported_is_the_first_one_in_the_file() -> None:
    server_first = {"server": {"port": "x"}, "store": {"url": []}}
    with pytest.raises(ConfigError, match=r"^server\.port: expected a number, got 'x'$"):
        parse_config(server_first)
    with pytest.raises(ConfigError, match=r"^store\.url: expected a string, got \[\]$"):
        parse_config(dict(reversed(server_first.items())))
    with pytest.raises(ConfigError, match=r"^channels\.telegram\.token: expected a string"):
        parse_config({"channels": {"telegram": {"token": [1], "mode": {}}}})


def test_a_bad_log_format_is_reported_only_when_nothing_else_is_wrong() -> None:
    with pytest.raises(ConfigError, match=r"^logging\.format: expected text or json, got 'xml'$"):
        parse_config({"logging": {"format": "xml"}})
    with pytest.raises(ConfigError, match=r"^store\.transcript_max: must not be negative"):
        parse_config({"logging": {"format": "xml"}, "store": {"transcript_max": -1}})


def test_yaml_values_keep_kefus_own_meaning() -> None:
    config = parse_config({"channels": {"telegram": {"enabled": "off", "token": 123}},
                           "store": {"transcript_max": 7.9}, "agents": {"canned": [{"title": 5}]},
                           "service_hours": {"weekly": {1: "09:00-10:00"}}, "server": None})
    assert config.channels.telegram.enabled is False and config.channels.telegram.token == "123"
    assert config.store.transcript_max == 7  # truncated, as int() always did
    assert config.agents.canned[0].title == "5"
    assert config.service_hours.weekly == {"1": "09:00-10:00"} and config.server == Config().server
    for data, message in [({"channels": {"web": {"enabled": 1}}}, "channels.web.enabled: expected true or false"),
                          ({"agents": {"users": [{"name": True}]}}, r"agents.users\[0\].name: expected a string"),
                          ({"web": {}}, "web: unknown key"), ({"store": "redis://x"}, "store: expected a mapping of keys"),
                          ({"knowledge": {"path": ["a"]}}, "knowledge.path: expected a string"),
                          ({"agents": {"users": None}}, "agents.users: expected a list")]:
        with pytest.raises(ConfigError, match=message.replace(".", r"\.")):
            parse_config(data)


def test_code_that_builds_a_config_skips_the_yaml_checks() -> None:
    from bot.config import ServerConfig, StoreConfig

    assert ServerConfig(port=-1).port == -1  # preflight names the flag or key for a bad port
    assert StoreConfig(url="${NOT_EXPANDED}").url == "${NOT_EXPANDED}"


def test_each_section_reports_its_own_problems_and_check_raises_the_first() -> None:
    from bot.config import AgentsConfig, AgentUserConfig, MetricsConfig, ServiceHoursConfig, StoreConfig

    assert Config().problems() == []
    broken = Config(store=StoreConfig(url="x://"), agents=AgentsConfig(users=(AgentUserConfig(),)))
    assert [p.split(":")[0] for p in broken.problems()] == ["store.url", "agents.users[0].name",
                                                            "agents.users[0].password_hash"]
    agents = AgentsConfig(users=(AgentUserConfig("li", "plaintext", "boss"),))
    assert agents.problems() == [
        "agents.users[0].role: expected agent or admin, got 'boss'",
        "agents.users[0].password_hash: not a hash made by kefu agent add (those start with scrypt$); "
        "make one with kefu agent add li"]
    with pytest.raises(ConfigError, match=r"^agents\.users\[0\]\.role"):
        agents.check()
    assert StoreConfig(url="mysql://u:pw@x").problems() == [
        "store.url: expected memory://, redis://host:port/db, rediss:// or unix://, got 'mysql://u:***@x'"]
    assert MetricsConfig(listen="9464").problems() == [
        "metrics.listen: expected HOST:PORT (e.g. 127.0.0.1:9464), got '9464'"]
    assert MetricsConfig(listen="[::1]:9464").address() == ("::1", 9464)
    assert ServiceHoursConfig(weekly={"mon": "9-5", "tue": "x"}).problems() == [
        "service_hours.weekly.mon: expected HH:MM-HH:MM, got '9-5'"]  # parsing stops at the first
    schedule = ServiceHoursConfig(weekly={"Mon": "09:00-24:00"}, holidays=("2026-10-01",)).schedule()
    assert schedule.spans[0][1].hour == 23 and len(schedule.holidays) == 1
