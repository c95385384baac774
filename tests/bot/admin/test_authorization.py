"""Every agent and admin route, read from the OpenAPI documents: anonymous callers get 401,
agents calling admin routes get 403, and nothing answers 500."""

from __future__ import annotations

import re
from typing import Any

import pytest

from bot.admin.openapi import OPENAPI as ADMIN_OPENAPI
from bot.agents.api import OPENAPI as AGENT_OPENAPI
from tests.bot.admin.conftest import Admin

PARAMS = {"entry_id": "refund-time", "ticket_id": "no-such-ticket", "name": "no-such-agent", "channel": "web",
          "user_id": "no-such-user"}


def operations(document: dict[str, Any]) -> list[tuple[str, str]]:
    found = []
    for path, methods in document["paths"].items():
        for method, op in methods.items():
            if op.get("security") == []:  # public: the document itself, login
                continue
            found.append((method.upper(), re.sub(r"\{(\w+)\}", lambda m: PARAMS[m.group(1)], path)))
    return found


AGENT_OPS = operations(AGENT_OPENAPI)
ADMIN_OPS = operations(ADMIN_OPENAPI)


def test_every_route_is_covered() -> None:
    assert len(AGENT_OPS) >= 14 and len(ADMIN_OPS) >= 20


@pytest.mark.parametrize(("method", "path"), AGENT_OPS + ADMIN_OPS)
async def test_anonymous_gets_401(admin: Admin, method: str, path: str) -> None:
    r = await admin.client.request(method, path, json={})
    assert r.status_code == 401, (method, path, r.status_code, r.text)


@pytest.mark.parametrize(("method", "path"), ADMIN_OPS)
async def test_an_agent_gets_403_on_admin_routes(admin: Admin, method: str, path: str) -> None:
    token = await admin.login("li")
    r = await admin.client.request(method, path, json={}, headers=token)
    assert r.status_code == 403, (method, path, r.status_code, r.text)


@pytest.mark.parametrize(("method", "path"), [op for op in AGENT_OPS + ADMIN_OPS if op[0] != "GET"])
async def test_a_forged_cross_site_write_gets_403(admin: Admin, method: str, path: str) -> None:
    await admin.login("boss")  # the session cookie is there, the CSRF header is not
    r = await admin.client.request(method, path, json={})
    assert r.status_code == 403 and "CSRF" in r.text, (method, path, r.status_code, r.text)
