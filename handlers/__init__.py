"""What the bot does for each decision: pure functions from a decision to replies and new state.

Handlers never call a platform or the store; the engine saves what they return and the
channel adapters deliver the replies.
"""

from handlers.dispatch import Outcome, respond

__all__ = ["Outcome", "respond"]
