"""Delivery views from PostgreSQL: one notification, a user's notifications, delivery statistics.

`GET /v1/notifications/{id}`: current state + timeline. `GET /v1/users/{id}/notifications`:
newest first, keyset-paginated (`limit`, opaque `cursor`, answered `next_cursor`), filtered by
`status` and `channel`. `GET /v1/stats/delivery?from=&to=&channel=`: per channel and category
(plus per channel and overall), counts and rates of delivered/failed/bounced/spam and
event->delivered latency percentiles (`delivered_at - caused_at`), over the notifications whose
first transition falls in [from, to) (RFC 3339; default: the last 24 hours). Rates are shares of
the notifications that reached one of those four outcomes. Bad query parameters are a 422 naming
the parameter.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from typing import Any, get_args

from aiohttp import web

from api.access import requires
from api.errors import NotFoundError
from api.identifiers import is_identifier
from api.keys import DELIVERY_STORE
from schemas.notifications import Channel, NotificationState
from streams.errors import ContractViolationError, FieldError
from streams.stores.delivery_store import Cursor, DeliveryRow, DeliveryStats

DEFAULT_LIMIT = 50
MAX_LIMIT = 500
DEFAULT_STATS_RANGE = timedelta(days=1)
# One statistics query scans at most this much of the deliveries.
MAX_STATS_RANGE = timedelta(days=31)
# Ours are under 100 characters (a time and an id); anything far longer is not ours.
MAX_CURSOR_CHARS = 512
_STATES = frozenset(get_args(NotificationState))
_CHANNELS = frozenset(get_args(Channel))
# Rates are over the notifications that reached an outcome with a provider.
_OUTCOMES = ("delivered", "failed", "bounced", "spam")


class InvalidCursorError(ValueError):
    pass


def encode_cursor(cursor: Cursor) -> str:
    created_at, notification_id = cursor
    raw = json.dumps([created_at.isoformat(), notification_id], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(text: str) -> Cursor:
    if len(text) > MAX_CURSOR_CHARS:
        raise InvalidCursorError("not a cursor this API issued")
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        created_at, notification_id = json.loads(raw)
        at = datetime.fromisoformat(created_at)
    except (binascii.Error, ValueError, TypeError, RecursionError) as exc:
        raise InvalidCursorError("not a cursor this API issued") from exc
    if at.tzinfo is None or not isinstance(notification_id, str):
        raise InvalidCursorError("not a cursor this API issued")
    return at, notification_id


def _invalid(name: str, message: str) -> ContractViolationError:
    return ContractViolationError("query", [FieldError(name, message)])


def _limit(query: Any) -> int:
    raw = query.get("limit")
    if raw is None:
        return DEFAULT_LIMIT
    if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= MAX_LIMIT:
        raise _invalid("limit", f"must be an integer from 1 to {MAX_LIMIT}")
    return int(raw)


def _choice(query: Any, name: str, allowed: frozenset[str]) -> str | None:
    value: str | None = query.get(name)
    if value is not None and value not in allowed:
        raise _invalid(name, f"must be one of {', '.join(sorted(allowed))}")
    return value


def _time(query: Any, name: str, default: datetime) -> datetime:
    raw = query.get(name)
    if raw is None:
        return default
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        raise _invalid(name, "must be an RFC 3339 date-time") from None
    if value.tzinfo is None:
        raise _invalid(name, "must carry a UTC offset")
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise _invalid(name, "is outside the years 1 to 9999 in UTC") from None


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
    limit = _limit(query)
    after: Cursor | None = None
    if "cursor" in query:
        try:
            after = decode_cursor(query["cursor"])
        except InvalidCursorError as exc:
            raise _invalid("cursor", str(exc)) from exc
    state = _choice(query, "status", _STATES)
    channel = _choice(query, "channel", _CHANNELS)
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
        next_cursor = encode_cursor((last.created_at, last.notification_id))
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
    end = _time(query, "to", datetime.now(UTC))
    try:
        default_start = end - DEFAULT_STATS_RANGE
    except OverflowError:
        raise _invalid("to", "leaves no room for a range before it") from None
    start = _time(query, "from", default_start)
    if start >= end:
        raise _invalid("from", "must be before to")
    if end - start > MAX_STATS_RANGE:
        raise _invalid("from", f"the range from..to may span at most {MAX_STATS_RANGE.days} days")
    channel = _choice(query, "channel", _CHANNELS)
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
