"""A user's notification preferences: read them, change some, reset them.

`GET /v1/users/{id}/preferences`: the effective preferences the worker materialized from
`users.events` (the same fold routing applies): per category and channel a switch that is on,
off, or null (not set: the default, on unless the notification is opt-in); quiet hours; the time
zone and locale from the identity platform. 404 while nothing is known of the user.

`PATCH /v1/users/{id}/preferences` (a JSON merge patch of `categories` and `quiet_hours`) and
`POST /v1/users/{id}/preferences/reset`: produce one `user.preferences-updated` on
`users.events`, keyed by the user, carrying the complete preferences (the patch merged into what
the view holds; none at all for a reset), answered 202 only once Kafka acknowledged it.

Read-after-write: the answer gives the event id. The view shows the change once the worker has
applied it, usually within a second: until then a GET shows the old preferences; it shows the
change when its `event_id` is the one answered. A PATCH merges into what the view holds, so a
second PATCH sent before the first shows could undo it: send `If-Match: "<event id>"` (the
view's `event_id`, or `"none"` when it has none) and a view that is not there yet is a 412.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from api.access import requires
from api.contracts import validate
from api.errors import NotFoundError, PreconditionFailedError
from api.keys import CATALOG, CODEC, PREFERENCES_STORE, PRODUCER, SETTINGS
from api.sessions import user_id_of
from api.webhooks import read_body, require_json
from schemas.preferences import PreferencesPatch, PreferencesView, patched
from schemas.users import CategoryPreferences, QuietHours, UserEvent, UserPreferencesUpdated
from streams.providers.receipts import parse_json_object

SOURCE = "tributary.api"
NO_EVENT = "none"


def view_body(view: PreferencesView) -> dict[str, Any]:
    body = view.model_dump(mode="json", exclude={"revision"})
    body["categories"] = _switches(view.categories)
    return body


def _switches(categories: CategoryPreferences | None) -> dict[str, dict[str, bool | None]]:
    """Every category and channel, null where not set (also with no preferences at all)."""
    empty = CategoryPreferences()
    full = (categories or empty).model_dump(mode="json")
    channels = ("email", "sms", "push", "whatsapp")
    return {
        category: {channel: (switches or {}).get(channel) for channel in channels}
        for category, switches in full.items()
    }


@requires("users:read")
async def get_preferences(request: web.Request) -> web.Response:
    user_id = user_id_of(request)
    view = await request.app[PREFERENCES_STORE].get(user_id)
    if view is None:
        raise NotFoundError(f"preferences of user {user_id!r}")
    return web.json_response(view_body(view), headers={"ETag": _etag(view)})


def _etag(view: PreferencesView | None) -> str:
    return f'"{view.event_id if view is not None and view.event_id else NO_EVENT}"'


def preferences_event(
    user_id: str, categories: CategoryPreferences | None, quiet_hours: QuietHours | None
) -> UserEvent:
    now = datetime.now(UTC)
    event_id = uuid.uuid4()
    return UserEvent(
        event_id=event_id,
        event_type="user.preferences-updated",
        occurred_at=now,
        ingested_at=now,
        source=SOURCE,
        correlation_id=str(event_id),
        payload=UserPreferencesUpdated(
            user_id=user_id, categories=categories, quiet_hours=quiet_hours
        ),
    )


async def _produce(request: web.Request, event: UserEvent) -> web.Response:
    app = request.app
    codec = await app[CODEC].codec()
    topic = app[CATALOG].for_topic("users.events").name
    payload = event.payload
    assert isinstance(payload, UserPreferencesUpdated)
    position = await app[PRODUCER].send(topic, payload.user_id.encode(), codec.encode(event))
    body = {
        "user_id": payload.user_id,
        "event_id": str(event.event_id),
        "topic": position.topic,
        "partition": position.partition,
        "offset": position.offset,
        "preferences": payload.model_dump(mode="json", exclude={"user_id"}),
    }
    return web.json_response(body, status=202)


@requires("users:write")
async def patch_preferences(request: web.Request) -> web.Response:
    user_id = user_id_of(request)
    require_json(request)
    raw = await read_body(request, request.app[SETTINGS].api.max_body_bytes)
    patch = validate(PreferencesPatch, parse_json_object(raw))
    view = await request.app[PREFERENCES_STORE].get(user_id)
    expected = request.headers.get("If-Match")
    if expected is not None and expected.strip() not in ("*", _etag(view)):
        raise PreconditionFailedError(
            f"the preferences are at {_etag(view)}, not {expected.strip()}"
        )
    categories, quiet_hours = patched(
        view.categories if view else None, view.quiet_hours if view else None, patch
    )
    return await _produce(request, preferences_event(user_id, categories, quiet_hours))


@requires("users:write")
async def reset_preferences(request: web.Request) -> web.Response:
    user_id = user_id_of(request)
    return await _produce(request, preferences_event(user_id, None, None))


def routes() -> list[web.RouteDef]:
    path = "/v1/users/{id}/preferences"
    return [
        web.get(path, get_preferences, name="preferences-get"),
        web.patch(path, patch_preferences, name="preferences-patch"),
        web.post(f"{path}/reset", reset_preferences, name="preferences-reset"),
    ]
