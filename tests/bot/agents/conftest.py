"""Fixtures for the human desk: a desk over the parametrised store, a controllable clock, a
recording channel, and helpers that put a customer in the queue the way the engine does."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import pytest

from bot.agents.auth import Agent
from bot.agents.desk import HumanDesk
from bot.channels.base import DeliveryDeferred
from bot.config import AgentsConfig, Config
from bot.storage.conversations import Store
from bot.types import (
    Candidate,
    Conversation,
    ConversationState,
    HandoffRequest,
    InboundMessage,
    Reply,
    Role,
    TranscriptLine,
)

LI = Agent("li", "agent")
WANG = Agent("wang", "agent")
BOSS = Agent("boss", "admin")


class Clock:
    def __init__(self, now: float = 1_790_000_000.0) -> None:  # Monday 21 Sep 2026, 22:13 in Shanghai
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class RecordingChannel:
    """A channel that keeps what it was asked to deliver; ``fail`` makes it refuse (a blocked
    bot, a platform error)."""

    def __init__(self, name: str = "web", fail: str = "") -> None:
        self.name = name
        self.fail = fail
        self.defer = ""  # queue instead of sending, like WeChat outside its 48-hour window
        self.sent: list[tuple[str, str]] = []

    def routes(self) -> list[object]:
        return []

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def deliver(self, conversation: Conversation, replies: Sequence[Reply]) -> None:
        if self.fail:
            raise RuntimeError(self.fail)
        if self.defer:
            raise DeliveryDeferred(self.defer, len(replies))
        self.sent.extend((conversation.id, r.text) for r in replies)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def desk_config(config: Config) -> Config:
    return dataclasses.replace(config, agents=AgentsConfig(queue_update_seconds=0, unclaimed_sla_minutes=5,
                                                           minutes_per_ticket=4))


@pytest.fixture
def channel() -> RecordingChannel:
    return RecordingChannel()


@pytest.fixture
def desk(store: Store, desk_config: Config, clock: Clock, channel: RecordingChannel) -> HumanDesk:
    return HumanDesk(store, desk_config, clock=clock, channels={"web": channel})  # type: ignore[dict-item]


async def hand_off(desk: HumanDesk, chat: str, said: Sequence[str], reason: str = "complaint",
                   language: str = "zh", channel: str = "web") -> tuple[Conversation, tuple[Reply, ...]]:
    """What the engine does on a handoff: the conversation waits and the desk queues it."""
    now = desk.clock()
    msg = InboundMessage(channel, f"u-{chat}", chat, said[-1], f"m-{chat}", now, display_name=f"客户{chat}")
    conv = await desk.store.load_conversation(msg.conversation_id) or Conversation.start(msg)
    lines = [TranscriptLine(Role.CUSTOMER, text, now) for text in said]
    request = HandoffRequest(reason, "test", (Candidate("refund-time", 0.42, "退款多久到账"),))
    conv = conv.evolve(state=ConversationState.WAITING, language=language, handoff=request)
    async with desk.store.conversation_lock(conv.id):  # as the engine's turn holds it
        replies = await desk.open_ticket(conv.evolve(transcript=(*conv.transcript, *lines)), request,
                                         (Reply("handler reply"),))
        lines += [TranscriptLine(Role.BOT, r.text, now) for r in replies]
        await desk.store.save_conversation(conv, lines)
    stored = await desk.store.load_conversation(conv.id)
    assert stored is not None
    return stored, replies
