"""Kefu's exception family.

Adapters translate platform and transport errors into these at the edge; the CLI and the
HTTP server each handle them in one place (clear message, no traceback).
"""


class KefuError(Exception):
    """Base of every error Kefu reports to a person."""


class ConfigError(KefuError):
    """The configuration is missing, malformed or names an unknown key."""


class StoreUnavailable(KefuError):
    """The store (Redis) cannot be reached; callers answer with a polite delay message."""


class BadRequest(KefuError):
    """An inbound request is malformed, forged or too large; answered with a 4xx."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status
