"""`GET /v1/orders/{id}`: the order view the worker materialized into PostgreSQL."""

from __future__ import annotations

from aiohttp import web

from api.access import requires
from api.errors import NotFoundError
from api.identifiers import is_identifier
from api.keys import ORDER_STORE


@requires("orders:read")
async def get_order(request: web.Request) -> web.Response:
    order_id = request.match_info["id"]
    view = await request.app[ORDER_STORE].get(order_id) if is_identifier(order_id) else None
    if view is None:
        raise NotFoundError(f"order {order_id!r}")
    return web.json_response(view.model_dump(mode="json"))


def routes() -> list[web.RouteDef]:
    return [web.get("/v1/orders/{id}", get_order)]
