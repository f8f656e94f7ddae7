"""Delivery views from PostgreSQL: one notification, a user's notifications, delivery statistics.

`GET /v1/notifications/{id}`: current state + timeline. `GET /v1/users/{id}/notifications`:
newest first, keyset-paginated (`limit`, opaque `cursor`, answered `next_cursor`), filtered by
`status` and `channel`. `GET /v1/stats/delivery?from=&to=&channel=`: per channel and category
(plus per channel and overall), counts and rates of delivered/failed/bounced/spam and
event->delivered latency percentiles (`delivered_at - caused_at`), over the notifications whose
first transition falls in [from, to) (RFC 3339; default: the last 24 hours). Rates are shares of
the notifications that reached one of those four outcomes; the counts are exact for any range,
a percentile is the nearest-rank latency to within 5 % (read from the per-minute and per-hour
rollups, `streams.stores.delivery_rollups`). Bad query parameters are a 422 naming the
parameter.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from typing import Any, get_args

from aiohttp import web

from api import query as params
from api.access import requires
from api.errors import NotFoundError
from api.identifiers import is_identifier
from api.keys import DELIVERY_STORE
from schemas.notifications import Channel, NotificationState
from streams.stores.delivery_statistics import DeliveryStats
from streams.stores.delivery_store import Cursor, DeliveryRow

DEFAULT_LIMIT = 50
MAX_LIMIT = 500
DEFAULT_STATS_RANGE = timedelta(days=1)
# One statistics query reads at most this much of the rollups (about 750 hours).
MAX_STATS_RANGE = timedelta(days=31)
_STATES = frozenset(get_args(NotificationState))
_CHANNELS = frozenset(get_args(Channel))
# Rates are over the notifications that reached an outcome with a provider.
_OUTCOMES = ("delivered", "failed", "bounced", "spam")


def delivery_body(row: DeliveryRow) -> dict[str, Any]:
    return row.model_dump(mode="json", exclude={"state_rank"})


@requires("notifications:read")
async def get_notification(request: web.Request) -> web.Response:
    notification_id = request.match_info["id"]
    store = request.app[DELIVERY_STORE]
    found = await store.get(notification_id) if is_identifier(notification_id) else None
    if found is None:
        raise NotFoundError(f"notification {notification_id!r}")
    row, steps = found
    timeline = [step.model_dump(mode="json", exclude={"notification_id"}) for step in steps]
    return web.json_response(delivery_body(row) | {"timeline": timeline})


@requires("notifications:read")
async def list_user_notifications(request: web.Request) -> web.Response:
    query = request.query
    limit = params.limit(query, DEFAULT_LIMIT, MAX_LIMIT)
    after: Cursor | None = params.keyset(query)
    state = params.choice(query, "status", _STATES)
    channel = params.choice(query, "channel", _CHANNELS)
    user_id = request.match_info["id"]
    rows = (
        await request.app[DELIVERY_STORE].list_for_user(
            user_id, limit=limit + 1, after=after, state=state, channel=channel
        )
        if is_identifier(user_id)
        else []
    )
    page = rows[:limit]
    next_cursor = None
    if len(rows) > limit:
        last = page[-1]
        next_cursor = params.encode_keyset(last.created_at, last.notification_id)
    body = {"items": [delivery_body(row) for row in page], "next_cursor": next_cursor}
    return web.json_response(body)


def stats_body(stats: DeliveryStats) -> dict[str, Any]:
    body = asdict(stats)
    outcomes = sum(body[name] for name in _OUTCOMES)
    body["outcomes"] = outcomes
    body["rates"] = {name: (body[name] / outcomes if outcomes else None) for name in _OUTCOMES}
    return body


@requires("stats:read")
async def delivery_stats(request: web.Request) -> web.Response:
    query = request.query
    end = params.moment(query, "to") or datetime.now(UTC)
    try:
        default_start = end - DEFAULT_STATS_RANGE
    except OverflowError:
        raise params.invalid("to", "leaves no room for a range before it") from None
    start = params.moment(query, "from") or default_start
    if start >= end:
        raise params.invalid("from", "must be before to")
    if end - start > MAX_STATS_RANGE:
        raise params.invalid(
            "from", f"the range from..to may span at most {MAX_STATS_RANGE.days} days"
        )
    channel = params.choice(query, "channel", _CHANNELS)
    groups = await request.app[DELIVERY_STORE].stats(start, end, channel)
    body = {
        "from": start.isoformat(),
        "to": end.isoformat(),
        "channel": channel,
        "groups": [stats_body(group) for group in groups],
    }
    return web.json_response(body)


def routes() -> list[web.RouteDef]:
    return [
        web.get("/v1/notifications/{id}", get_notification),
        web.get("/v1/users/{id}/notifications", list_user_notifications),
        web.get("/v1/stats/delivery", delivery_stats),
    ]
