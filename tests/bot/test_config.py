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
