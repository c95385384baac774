"""The consoles' and chat page's scripts and style sheets, served from ``bot/static``.

Pages carry no inline ``<script>``/``<style>``, so the Content-Security-Policy set in
``bot/server.py`` can be ``default-src 'self'`` with no ``'unsafe-inline'``.
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib import resources

from starlette.responses import Response


def static_asset(name: str, allowed: Mapping[str, str]) -> Response:
    """``name`` from ``bot/static`` if it is one of ``allowed`` (name → media type), else 404."""
    if name not in allowed:
        return Response("not found", status_code=404, media_type="text/plain")
    text = resources.files("bot").joinpath(f"static/{name}").read_text(encoding="utf-8")
    return Response(text, media_type=allowed[name], headers={"Cache-Control": "no-cache"})
