"""The one translation of errors to HTTP: each domain refusal keeps its status and JSON body."""

from __future__ import annotations

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.testclient import TestClient

from bot.errors import (
    BadRequest,
    Conflict,
    DeliveryFailed,
    DomainError,
    Forbidden,
    Gone,
    InvalidInput,
    NotAuthenticated,
    NotFound,
    Overloaded,
    RateLimited,
)
from bot.server import exception_handlers, status_of


@pytest.mark.parametrize(("error", "status"), [
    (InvalidInput("a note is 1-4000 characters", {"text": "too long"}), 400),
    (NotAuthenticated("not logged in"), 401), (Forbidden("admins only"), 403), (NotFound("no ticket t1"), 404),
    (Conflict("ticket t1 changed meanwhile; reload"), 409), (Gone("the conversation has expired"), 410),
    (RateLimited("too many attempts; try again in 15 minutes"), 429),
    (DeliveryFailed("outside the 48-hour window"), 502), (Overloaded("too many logins at once"), 503),
    (DomainError("refused"), 400), (BadRequest("XML body too large", status=413), 413),
])
def test_each_refusal_is_its_status_with_the_message(error: Exception, status: int) -> None:
    async def refuse(request: Request) -> Response:
        raise error

    app = Starlette(routes=[Route("/", refuse)], exception_handlers=exception_handlers())
    with TestClient(app) as client:
        response = client.get("/")
    assert response.status_code == status and response.json() == {"error": str(error)}
    if isinstance(error, DomainError):
        assert status_of(error) == status


def test_field_errors_are_kept_on_the_exception() -> None:
    error = InvalidInput("wrong values", {"name": "at most 64 characters"})
    assert error.fields == {"name": "at most 64 characters"} and str(error) == "wrong values"
