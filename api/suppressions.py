"""The suppression list: addresses that bounced or drew a spam complaint, and their lifting.

`GET /v1/suppressions?channel=&address=&limit=&cursor=` (operator): the suppressed addresses the
worker materialized into PostgreSQL, most recently suppressed first, keyset-paginated
(`next_cursor`; send it back with the same filters).

`DELETE /v1/suppressions/{channel}/{address}` (operator): lifts the address's suppression. The
API never talks to the worker: it produces one `suppression.lifted` event per user the view
shows holding the address, on `notifications.suppressions` keyed by that user, and answers 204
once Kafka acknowledged every one (404 when the view holds no such address). The worker applies
the lift when it reads the event: a notification routed a moment after the 204 may still meet
the suppression, and a read may still list it, until then. An `Idempotency-Key` header makes the
event ids deterministic, so a retried request produces records consumers can drop.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any, get_args

from aiohttp import web
from pydantic import TypeAdapter, ValidationError

from api import query
from api.access import requires
from api.errors import NotFoundError
from api.keys import CATALOG, CODEC, PRODUCER, SUPPRESSION_STORE
from schemas.notifications import Channel
from schemas.suppressions import SuppressionEvent, SuppressionLifted
from schemas.users import Email, Phone, PushToken
from streams.errors import ContractViolationError, FieldError
from streams.stores.suppression_store import SuppressionRow

SOURCE = "tributary.api"
LIFT_NAMESPACE = uuid.UUID("5b0e7d42-1c9a-4f3e-b6d8-8a2c4e6f0d19")
LIFT_REASON = "lifted via the API"
DEFAULT_LIMIT = 50
MAX_LIMIT = 500
CHANNELS = frozenset(get_args(Channel))
# What an address looks like on each channel: as the user contract accepts it.
_ADDRESSES: dict[str, TypeAdapter[str]] = {
    "email": TypeAdapter(Email),
    "sms": TypeAdapter(Phone),
    "whatsapp": TypeAdapter(Phone),
    "push": TypeAdapter(PushToken),
}


def _invalid_path(name: str, message: str) -> ContractViolationError:
    return ContractViolationError("path", [FieldError(name, message)])


def valid_address(channel: str, address: str, *, where: str = "path") -> str:
    """`address` if it is one `channel` can have, else a 422 naming `address`."""
    try:
        return _ADDRESSES[channel].validate_python(address)
    except ValidationError as exc:
        message = f"not a {channel} address: {exc.errors()[0]['msg']}"
        raise ContractViolationError(where, [FieldError("address", message)]) from None


def row_body(row: SuppressionRow) -> dict[str, Any]:
    body = row.model_dump(mode="json", exclude={"suppression_id"})
    when = row.suppressed_at.astimezone(UTC).isoformat(timespec="seconds")
    body["status_reason"] = f"suppressed: {row.kind} {when}"
    return body


@requires("operator")
async def list_suppressions(request: web.Request) -> web.Response:
    params = request.query
    channel = query.choice(params, "channel", CHANNELS)
    address = params.get("address")
    if address is not None:
        if channel is None:
            raise query.invalid("channel", "required with address")
        address = valid_address(channel, address, where="query")
    limit = query.limit(params, DEFAULT_LIMIT, MAX_LIMIT)
    after = query.keyset(params)
    store = request.app[SUPPRESSION_STORE]
    rows = await store.page(channel=channel, address=address, limit=limit + 1, after=after)
    page = rows[:limit]
    next_cursor = None
    if len(rows) > limit:
        next_cursor = query.encode_keyset(page[-1].suppressed_at, page[-1].suppression_id)
    return web.json_response({"items": [row_body(row) for row in page], "next_cursor": next_cursor})


def lift_event(
    user_id: str, channel: Channel, address: str, now: datetime, idempotency_key: str | None
) -> SuppressionEvent:
    event_id = (
        uuid.uuid5(LIFT_NAMESPACE, f"{user_id}|{channel}|{address}|{idempotency_key}")
        if idempotency_key
        else uuid.uuid4()
    )
    return SuppressionEvent(
        event_id=event_id,
        event_type="suppression.lifted",
        occurred_at=now,
        ingested_at=now,
        source=SOURCE,
        correlation_id=str(event_id),
        payload=SuppressionLifted(
            user_id=user_id, channel=channel, address=address, reason=LIFT_REASON
        ),
    )


def _channel(value: str) -> Channel:
    for channel in get_args(Channel):
        if channel == value:
            return channel  # type: ignore[no-any-return]
    raise _invalid_path("channel", f"must be one of {', '.join(sorted(CHANNELS))}")


@requires("operator")
async def lift_suppression(request: web.Request) -> web.Response:
    app = request.app
    channel = _channel(request.match_info["channel"])
    address = valid_address(channel, request.match_info["address"])
    users = await app[SUPPRESSION_STORE].users_for(channel, address)
    if not users:
        raise NotFoundError(f"suppression of {channel} address {address!r}")
    now = datetime.now(UTC)
    key = request.headers.get("Idempotency-Key")
    events = [lift_event(user_id, channel, address, now, key) for user_id in users]
    codec = await app[CODEC].codec()
    topic = app[CATALOG].for_topic("notifications.suppressions").name
    await asyncio.gather(
        *(
            app[PRODUCER].send(topic, event.payload.user_id.encode(), codec.encode(event))
            for event in events
        )
    )
    return web.Response(status=204)


def routes() -> list[web.RouteDef]:
    return [
        web.get("/v1/suppressions", list_suppressions, name="suppressions-list"),
        web.delete(
            "/v1/suppressions/{channel}/{address}", lift_suppression, name="suppressions-lift"
        ),
    ]
