"""The order views the worker materialized into PostgreSQL: one order, a list, an audit trail,
and order statistics.

`GET /v1/orders/{id}`: the latest state. `GET /v1/orders?user_id=&status=&from=&to=&limit=&cursor=`:
newest first by creation time, filters combined, keyset-paginated (`next_cursor` in the answer;
send it back with the same filters). `GET /v1/orders/{id}/history`: every event applied to the
order in event-time order, with the status it led to and whether it was ignored as stale.
`GET /v1/stats/orders?from=&to=&currency=`: per currency, sums over the closed tumbling windows
of `analytics.orders` lying wholly inside [from, to) (default: the last 24 hours); the answer
names the span the windows cover. Bad parameters are a 422 naming the parameter.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, get_args

from aiohttp import web
from pydantic import TypeAdapter

from api import query
from api.access import requires
from api.errors import NotFoundError
from api.identifiers import is_identifier
from api.keys import ORDER_STORE
from schemas.orders import CurrencyCode, Identifier, OrderStatus
from streams.stores.order_stats_store import CurrencyStats
from streams.stores.order_store import OrderFilter

DEFAULT_LIMIT = 50
MAX_LIMIT = 500
DEFAULT_STATS_RANGE = timedelta(days=1)
# A year of 1-minute windows is ~half a million rows per currency to sum: the most asked at once.
MAX_STATS_RANGE = timedelta(days=366)
_STATUSES = frozenset(get_args(OrderStatus))
_ID: TypeAdapter[str] = TypeAdapter(Identifier)
_CURRENCY: TypeAdapter[str] = TypeAdapter(CurrencyCode)


@requires("orders:read")
async def get_order(request: web.Request) -> web.Response:
    order_id = request.match_info["id"]
    view = await request.app[ORDER_STORE].get(order_id) if is_identifier(order_id) else None
    if view is None:
        raise NotFoundError(f"order {order_id!r}")
    return web.json_response(view.model_dump(mode="json"))


def order_filter(params: Any) -> OrderFilter:
    start = query.moment(params, "from")
    end = query.moment(params, "to")
    if start is not None and end is not None and start >= end:
        raise query.invalid("from", "must be before to")
    return OrderFilter(
        user_id=query.validated(params, "user_id", _ID),
        status=query.choice(params, "status", _STATUSES),
        created_from=start,
        created_to=end,
    )


@requires("orders:read")
async def list_orders(request: web.Request) -> web.Response:
    params = request.query
    where = order_filter(params)
    limit = query.limit(params, DEFAULT_LIMIT, MAX_LIMIT)
    after = query.keyset(params)
    views = await request.app[ORDER_STORE].list_orders(where, limit=limit + 1, after=after)
    page = views[:limit]
    next_cursor = None
    if len(views) > limit:
        next_cursor = query.encode_keyset(page[-1].created_at, page[-1].order_id)
    body = {"items": [view.model_dump(mode="json") for view in page], "next_cursor": next_cursor}
    return web.json_response(body)


@requires("orders:read")
async def order_history(request: web.Request) -> web.Response:
    order_id = request.match_info["id"]
    if not is_identifier(order_id):
        raise NotFoundError(f"order {order_id!r}")
    store = request.app[ORDER_STORE]
    entries = await store.history(order_id)
    # An order materialized before the trail existed has a view but no trail yet.
    if not entries and await store.get(order_id) is None:
        raise NotFoundError(f"order {order_id!r}")
    events = [entry.model_dump(mode="json", exclude={"order_id"}) for entry in entries]
    return web.json_response({"order_id": order_id, "events": events})


def stats_body(stats: CurrencyStats) -> dict[str, Any]:
    return {
        "currency": stats.currency,
        "windows": stats.windows,
        "covered_from": stats.covered_from.isoformat(),
        "covered_to": stats.covered_to.isoformat(),
        "events": stats.events,
        "orders_created": stats.orders_created,
        "orders_paid": stats.orders_paid,
        "revenue_minor": stats.revenue_minor,
        "average_order_value_minor": stats.average_order_value_minor,
        "cancellations": stats.cancellations,
        "refunds": stats.refunds,
        "refunded_minor": stats.refunded_minor,
    }


@requires("stats:read")
async def order_stats(request: web.Request) -> web.Response:
    params = request.query
    end = query.moment(params, "to") or datetime.now(UTC)
    start = query.moment(params, "from")
    if start is None:
        try:
            start = end - DEFAULT_STATS_RANGE
        except OverflowError:
            raise query.invalid("to", "leaves no room for a range before it") from None
    if start >= end:
        raise query.invalid("from", "must be before to")
    if end - start > MAX_STATS_RANGE:
        raise query.invalid("from", f"from..to may span at most {MAX_STATS_RANGE.days} days")
    currency = query.validated(params, "currency", _CURRENCY)
    totals = await request.app[ORDER_STORE].windows.totals(start, end, currency)
    body = {
        "from": start.isoformat(),
        "to": end.isoformat(),
        "currency": currency,
        "currencies": [stats_body(stats) for stats in totals],
    }
    return web.json_response(body)


def routes() -> list[web.RouteDef]:
    return [
        web.get("/v1/orders", list_orders, name="orders-list"),
        web.get("/v1/orders/{id}", get_order, name="orders-get"),
        web.get("/v1/orders/{id}/history", order_history, name="orders-history"),
        web.get("/v1/stats/orders", order_stats, name="orders-stats"),
    ]
