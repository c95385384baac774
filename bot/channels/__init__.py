"""Channel adapters: each turns its platform's payloads into :class:`InboundMessage` and renders
:class:`Reply` back.  Platform objects never leave the adapter module."""

from bot.channels.base import Channel

__all__ = ["Channel"]
