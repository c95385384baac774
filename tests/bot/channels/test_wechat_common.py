"""The channel plumbing the Official Account and WeCom adapters share (``WeChatFamilyChannel``):
one base builds the token cache, API client, outbox and held work, mounts the webhook and stops
the same way; the config rules it checks are the ones ``kefu check`` reports."""

from __future__ import annotations

import base64
from typing import Any

import httpx
import pytest

from bot.channels.wechat import WeChatChannel
from bot.channels.wechat_common import WeChatFamilyChannel
from bot.channels.wecom import WeComChannel
from bot.config import ChannelsConfig, Config, WeChatConfig, WeComConfig
from bot.errors import ConfigError
from bot.preflight import config_problems
from bot.storage.client import connect
from bot.storage.conversations import Store
from bot.types import InboundMessage, TurnResult

AES_KEY = base64.b64encode(b"0123456789abcdef0123456789abcdef").decode().rstrip("=")
WECHAT = WeChatConfig(enabled=True, token="t", app_id="wx1", app_secret="s", encoding_aes_key=AES_KEY)
WECOM = WeComConfig(enabled=True, corp_id="ww1", secret="s", token="t", encoding_aes_key=AES_KEY, open_kfid="kf1")


class NoTurns:
    async def handle(self, msg: InboundMessage) -> TurnResult:
        raise AssertionError("no turns in this test")


async def test_both_adapters_are_one_family_with_their_own_names(store: Store) -> None:
    injected = httpx.AsyncClient()
    wechat = WeChatChannel(WECHAT, NoTurns(), store, injected)
    wecom = WeComChannel(WECOM, NoTurns(), store)
    for channel, name in ((wechat, "wechat"), (wecom, "wecom")):
        assert isinstance(channel, WeChatFamilyChannel) and channel.name == name
        assert [getattr(route, "path", "") for route in channel.routes()] == [f"/webhooks/{name}"]
        assert channel.outbox.channel == channel.tokens.channel == name
        assert channel.outbox.retry is channel.unsent and channel.api.tokens is channel.tokens
    assert wechat.http is injected and wechat.api.base_url == WECHAT.api_base_url
    await wechat.stop()
    await wecom.stop()
    assert not injected.is_closed, "an injected client belongs to the caller"
    assert wecom.http.is_closed, "a client the channel made is closed with it"
    await injected.aclose()


async def test_the_window_errors_are_each_platforms_own(store: Store) -> None:
    from bot.channels.wechat_common import ApiError

    wechat = WeChatChannel(WECHAT, NoTurns(), store)
    wecom = WeComChannel(WECOM, NoTurns(), store)
    assert wechat.outbox.blocked(ApiError(45015, "")) == "window_closed"
    assert wechat.outbox.blocked(ApiError(95001, "")) is None
    assert wecom.outbox.blocked(ApiError(95001, "")) == "quota_used"
    await wechat.stop()
    await wecom.stop()


@pytest.mark.parametrize(("channels", "build"), [
    (ChannelsConfig(wechat=WeChatConfig(enabled=True, app_id="wx1")), WeChatChannel),
    (ChannelsConfig(wecom=WeComConfig(enabled=True, corp_id="ww1", encoding_aes_key="short")), WeComChannel),
])
def test_a_channel_refuses_what_kefu_check_reports_in_the_same_words(channels: ChannelsConfig, build: Any) -> None:
    config = Config(channels=channels)
    section = channels.wechat if build is WeChatChannel else channels.wecom
    reported = [p for p in config_problems(config) if p.startswith(f"channels.{build.name}.")]
    assert reported == section.problems() and len(reported) >= 2
    with pytest.raises(ConfigError) as error:
        build(section, NoTurns(), Store(connect("memory://"), config.store))  # refused before any I/O
    assert str(error.value) == reported[0]
