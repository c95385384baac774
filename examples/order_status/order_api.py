"""A stand-in for the company's order API, for the demo and the tests.

``GET /orders/{number}`` → ``{"order_number", "status", "carrier", "tracking_number", "eta"}``,
404 when the order is unknown.  Run it with ``python -m examples.order_status.order_api``
(port 8089, or ``ORDER_API_PORT``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

SAMPLE_ORDERS: dict[str, dict[str, Any]] = {
    "A123456": {"status": "in_transit", "carrier": "顺丰速运 SF Express", "tracking_number": "SF1234567890",
                "eta": "2026-11-25"},
    "A654321": {"status": "delivered", "carrier": "中通快递 ZTO", "tracking_number": "ZT9876543210",
                "eta": "2026-11-20"},
    "B000001": {"status": "processing", "carrier": "-", "tracking_number": "-", "eta": "2026-11-27"},
}


def create_app(orders: Mapping[str, Mapping[str, Any]] = SAMPLE_ORDERS) -> Starlette:
    async def order(request: Request) -> JSONResponse:
        number = request.path_params["number"].upper()
        found = orders.get(number)
        if found is None:
            return JSONResponse({"error": f"no order {number}"}, status_code=404)
        return JSONResponse({"order_number": number, **found})

    return Starlette(routes=[Route("/orders/{number}", order)])


if __name__ == "__main__":
    import uvicorn

    uvicorn.run(create_app(), host="127.0.0.1", port=int(os.environ.get("ORDER_API_PORT", "8089")))
