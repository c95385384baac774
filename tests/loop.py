"""Calling the app's event loop from a synchronous test (inside ``with TestClient(...)``)."""

from __future__ import annotations

from anyio.from_thread import BlockingPortal
from starlette.testclient import TestClient


def portal(client: TestClient) -> BlockingPortal:
    """The portal of a started TestClient: ``portal(client).call(coroutine_fn, *args)``."""
    assert client.portal is not None, "use the TestClient inside its `with` block"
    return client.portal
