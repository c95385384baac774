"""The intent layer's interface: one message plus its conversation in, one :class:`Decision` out.

The engine depends only on this protocol, so the built-in layer and external NLU backends
(e.g. a Rasa server) are interchangeable.
"""

from __future__ import annotations

from typing import Protocol

from bot.types import Conversation, Decision


class IntentLayer(Protocol):
    def decide(self, text: str, conversation: Conversation) -> Decision:
        """Classify ``text`` (the newest customer message) in the context of ``conversation``.

        ``conversation.transcript`` does not yet contain ``text``.
        """
        ...

    def is_quick(self, text: str, conversation: Conversation) -> bool:
        """True if :meth:`decide` needs no model run and no I/O for this message (say, a
        repeated question whose vector is remembered).  The engine then decides on the event
        loop; otherwise in a worker thread, which costs a thread hop but never stalls the loop."""
        ...
