"""The shape every channel adapter has, so the server can mount and start them uniformly."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from starlette.routing import BaseRoute

from bot.types import Conversation, Reply


class Channel(Protocol):
    name: str

    def routes(self) -> list[BaseRoute]:
        """HTTP routes (webhooks) mounted on Kefu's ASGI app."""
        ...

    async def start(self) -> None:
        """Start background work (e.g. Telegram polling); return quickly."""
        ...

    async def stop(self) -> None: ...

    async def deliver(self, conversation: Conversation, replies: Sequence[Reply]) -> None:
        """Send messages outside a webhook turn (agent replies, late answers)."""
        ...
