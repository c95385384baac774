"""An agent exports a ticket's transcript; phone and ID numbers are masked when configured."""

from __future__ import annotations

import dataclasses

import pytest

from bot.config import Config, SecurityConfig
from tests.bot.admin.conftest import Admin

PHONE, ID_CARD = "13812345678", "11010519491231002X"


@pytest.fixture(params=[False, True], ids=["plain", "masked"])
def admin_config(admin_config: Config, request: pytest.FixtureRequest) -> Config:
    return dataclasses.replace(admin_config, security=SecurityConfig(mask_exports=request.param))


async def test_export_of_a_handed_off_conversation(admin: Admin, admin_config: Config) -> None:
    await admin.chat("我要投诉你们，快递三天没动", session="exporter")
    await admin.chat(f"我的电话{PHONE}，身份证{ID_CARD}", session="exporter")
    csrf = await admin.login("li")
    tickets = (await admin.client.get("/api/agent/tickets", headers=csrf)).json()
    [ticket] = [t for t in tickets["queued"] if t["conversation_id"] == "web:session-exporter"]
    r = await admin.client.get(f"/api/agent/tickets/{ticket['id']}/export")
    assert r.headers["content-disposition"].startswith("attachment;")
    assert r.status_code == 200, r.text
    text = r.text
    assert "快递三天没动" in text and "complaint" in text and "customer:" in text and "bot:" in text
    if admin_config.security.mask_exports:
        assert PHONE not in text and ID_CARD not in text and "138****5678" in text
    else:
        assert PHONE in text and ID_CARD in text
