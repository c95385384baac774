"""The shape every channel adapter has, so the server can mount and start them uniformly."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from starlette.routing import BaseRoute

from bot.errors import KefuError
from bot.types import Conversation, Reply


class DeliveryDeferred(KefuError):
    """Some replies could not be sent now and wait to go out later (nothing is lost).

    Raised by ``deliver`` so the agent console can tell the agent *why* ("window_closed",
    "quota_used", "api_error:<code>", "platform_unavailable") instead of pretending the message
    went out; ``until`` says what they wait for.
    """

    def __init__(self, reason: str, queued: int, until: str = "the customer writes again") -> None:
        super().__init__(f"{queued} message(s) queued until {until} ({reason})")
        self.reason = reason
        self.queued = queued


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


@runtime_checkable
class ReportsReadiness(Protocol):
    """A channel that can be not ready yet (Telegram before its webhook is set or its poller
    runs); ``/readyz`` asks it.  Channels without the method are ready once started."""

    def not_ready(self) -> str:
        """Why the channel cannot take messages yet; '' when it can."""
        ...
