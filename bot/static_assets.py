"""The consoles' and chat page's scripts and style sheets, served from ``bot/static``, and the
Content-Security-Policy they are served under.

Pages carry no inline ``<script>``/``<style>``, so the policy (set on every response in
``bot/server.py``, or by a page that may be framed, like the chat page) can be
``default-src 'self'`` with no ``'unsafe-inline'``.
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib import resources

from starlette.responses import Response

CSP = "default-src 'self'; base-uri 'none'; object-src 'none'; form-action 'self'; frame-ancestors {ancestors}"


def content_security_policy(ancestors: str = "'none'") -> str:
    """The strict policy every page gets, with ``ancestors`` (a CSP source list) allowed to frame it."""
    return CSP.format(ancestors=ancestors)


def static_asset(name: str, allowed: Mapping[str, str]) -> Response:
    """``name`` from ``bot/static`` if it is one of ``allowed`` (name → media type), else 404."""
    if name not in allowed:
        return Response("not found", status_code=404, media_type="text/plain")
    text = resources.files("bot").joinpath(f"static/{name}").read_text(encoding="utf-8")
    return Response(text, media_type=allowed[name], headers={"Cache-Control": "no-cache"})
