"""Kefu's exception family.

Adapters translate platform and transport errors into these at the edge; the CLI and the
HTTP server each handle them in one place (clear message, no traceback).  Services (the desk,
agent authentication, the consoles' APIs) refuse a request with a :class:`DomainError` named
for what went wrong in the domain; only ``bot/server.py`` knows which HTTP status each one is.
"""

from collections.abc import Mapping


class KefuError(Exception):
    """Base of every error Kefu reports to a person."""


class ConfigError(KefuError):
    """The configuration is missing, malformed or names an unknown key."""


class StoreUnavailable(KefuError):
    """The store (Redis) cannot be reached; callers answer with a polite delay message."""


class BadRequest(KefuError):
    """An inbound request is malformed, forged or too large; answered with a 4xx.

    For the HTTP edge (channel adapters, body parsing); services raise a :class:`DomainError`."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


class DomainError(KefuError):
    """A service refused what it was asked; the message is shown to the caller as is."""


class InvalidInput(DomainError):
    """The values given are wrong; ``fields`` names the offending ones (field → what is wrong)."""

    def __init__(self, message: str, fields: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.fields: dict[str, str] = dict(fields or {})


class NotAuthenticated(DomainError):
    """The caller has not said who they are (no session, a wrong token or password)."""


class Forbidden(DomainError):
    """The caller is known but their role (or ownership) does not allow this."""


class NotFound(DomainError):
    """The named thing (ticket, agent, answer, blocked customer) does not exist."""


class Conflict(DomainError):
    """The request contradicts the current state (already claimed, over a limit, changed meanwhile)."""


class Gone(DomainError):
    """The thing existed but has expired (a conversation past its retention)."""


class RateLimited(DomainError):
    """The caller used up their attempts for now (logins)."""


class Overloaded(DomainError):
    """Too much of this work is already waiting in this worker; the caller should retry soon."""


class DeliveryFailed(DomainError):
    """The customer's channel refused an agent's message (e.g. WeChat's 48-hour window)."""
