"""The classify step's interfaces: one message plus its conversation in, one :class:`Decision` out.

The engine depends only on :class:`IntentLayer`; :class:`intents.classify.Classifier` is the one
implementation that applies Kefu's service rules (a pick, then an escalation) before any
:class:`Reader` — Kefu's own retriever, or an external NLU such as a Rasa server — so every
backend gets the same order.
"""

from __future__ import annotations

from typing import Protocol

from bot.types import Choice, Conversation, Decision


class IntentLayer(Protocol):
    def decide(self, text: str, conversation: Conversation, choice: Choice | None = None) -> Decision:
        """Classify ``text`` (the newest customer message) in the context of ``conversation``.

        Pure: no I/O that changes anything (business actions run afterwards, in the engine's
        act step).  ``choice`` is the button the customer pressed, if the message is one;
        ``conversation.transcript`` does not yet contain ``text``.
        """
        ...

    def is_quick(self, text: str, conversation: Conversation) -> bool:
        """True if :meth:`decide` needs no model run and no I/O for this message (say, a
        repeated question whose vector is remembered).  The engine then decides on the event
        loop; otherwise in a worker thread, which costs a thread hop but never stalls the loop."""
        ...


class Reader(Protocol):
    """One backend's reading of a message Kefu's rules did not settle (not a pick, not an escalation)."""

    def understand(self, text: str, language: str, conversation: Conversation) -> Decision | None:
        """The decision for ``text`` in ``language``, or None to leave it to the next reader."""
        ...

    def is_quick(self, text: str) -> bool:
        """True if :meth:`understand` needs no model run and no I/O for ``text``."""
        ...


class FinalReader(Protocol):
    """The last reader (Kefu's own): it always decides."""

    def understand(self, text: str, language: str, conversation: Conversation) -> Decision:
        ...

    def is_quick(self, text: str) -> bool:
        ...
