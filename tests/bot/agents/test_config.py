"""The ``agents`` and ``service_hours`` config sections, as an operator writes them in YAML."""

from __future__ import annotations

import pytest
import yaml

from bot.config import AgentUserConfig, parse_config
from bot.errors import ConfigError

YAML = """
agents:
  unclaimed_sla_minutes: 3
  users:
    - {name: li, role: agent, password_hash: "scrypt$16384$8$1$c2FsdA==$aGFzaA=="}
  canned:
    - {title: 问候, text: 您好，我是人工客服。}
service_hours:
  timezone: Asia/Shanghai
  weekly: {mon: "09:00-21:00", sat: "10:00-18:00"}
  holidays: ["2026-10-01"]
"""


def test_agents_and_service_hours_parse_from_yaml() -> None:
    config = parse_config(yaml.safe_load(YAML))
    assert config.agents.users == (AgentUserConfig("li", "scrypt$16384$8$1$c2FsdA==$aGFzaA==", "agent"),)
    assert config.agents.unclaimed_sla_minutes == 3 and config.agents.canned[0].title == "问候"
    assert config.service_hours.weekly == {"mon": "09:00-21:00", "sat": "10:00-18:00"}
    assert config.service_hours.holidays == ("2026-10-01",)


@pytest.mark.parametrize(("data", "message"), [
    ({"agents": {"user": []}}, "agents.user: unknown key"),
    ({"agents": {"users": [{"name": "li", "pasword_hash": "x"}]}}, r"agents.users\[0\].pasword_hash: unknown key"),
    ({"service_hours": {"weekly": ["mon"]}}, "service_hours.weekly: expected a mapping"),
])
def test_typos_name_the_key(data: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_config(data)
