"""Schemathesis against the agent and admin OpenAPI documents, on a real ``kefu serve``: requests
generated from the schemas (valid and not) never get a 5xx."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from bot.admin.openapi import OPENAPI as ADMIN_OPENAPI
from bot.agents.access import COOKIE
from bot.agents.api import OPENAPI as AGENT_OPENAPI
from tests.bot.admin.test_admin_browser import PASSWORD, admin_config
from tests.browser import kefu_server

# logout would end the session the other operations use; events is an endless SSE stream
SKIP = {"/api/agent/logout", "/api/agent/events"}
schema = schemathesis.openapi.from_dict({
    **ADMIN_OPENAPI,
    "paths": {path: ops for document in (AGENT_OPENAPI, ADMIN_OPENAPI) for path, ops in document["paths"].items()
              if path not in SKIP},
    "components": {**ADMIN_OPENAPI.get("components", {}),
                   "schemas": {**AGENT_OPENAPI["components"]["schemas"],
                               **ADMIN_OPENAPI.get("components", {}).get("schemas", {})}},
})


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("schemathesis")
    with kefu_server(admin_config(tmp / "cache"), tmp) as base:
        login = httpx.post(f"{base}/api/agent/login", json={"name": "boss", "password": PASSWORD})
        assert login.status_code == 200, login.text
        yield {"base": base, "cookies": {COOKIE: login.cookies[COOKIE]},
               "headers": {"X-CSRF-Token": login.json()["csrf"]}}


@schema.parametrize()
@settings(max_examples=12, deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck))
def test_no_server_errors(case: schemathesis.Case,  # type: ignore[type-arg]
                           server: dict[str, Any]) -> None:
    response = case.call(base_url=server["base"], headers=server["headers"], cookies=server["cookies"])
    assert response.status_code < 500, (case.method, case.formatted_path, case.body, response.text)
