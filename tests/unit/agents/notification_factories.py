"""Events, contacts and a router for the notification tests: valid, only what matters varies."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from agents.routing.contacts import Contact
from agents.routing.rendering import TemplateRenderer
from agents.routing.router import Router
from agents.routing.rules import requests_for
from schemas.auth import AuthEvent
from schemas.notifications import NotificationRequestEvent
from schemas.orders import OrderEvent
from schemas.users import CategoryPreferences, QuietHours, UserEvent
from streams.settings import NotificationSettings, ThrottleLimit

# A Saturday, 12:00 UTC (13:00 in Paris).
NOON = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
USER = "usr-1"
CHANNELS = ("email", "sms", "push", "whatsapp")


def envelope(
    event_type: str, payload: dict[str, Any], event_id: uuid.UUID | None = None
) -> dict[str, Any]:
    return {
        "event_id": event_id or uuid.uuid4(),
        "event_type": event_type,
        "occurred_at": NOON,
        "ingested_at": NOON,
        "source": "test",
        "correlation_id": "corr-1",
        "payload": payload,
    }


def user_event(event_type: str, user_id: str = USER, **payload: Any) -> UserEvent:
    return UserEvent.model_validate(envelope(event_type, {"user_id": user_id, **payload}))


def user_created(user_id: str = USER, **overrides: Any) -> UserEvent:
    fields = {
        "email": "ada@example.com",
        "phone": "+33612345678",
        "locale": "fr-FR",
        "time_zone": "Europe/Paris",
        "push_token": "tok-1",
    }
    return user_event("user.created", user_id, **{**fields, **overrides})


def auth_event(event_type: str, user_id: str = USER, **payload: Any) -> AuthEvent:
    fields = {"user_id": user_id, "ip": "203.0.113.7", **payload}
    return AuthEvent.model_validate(
        envelope(event_type, {k: v for k, v in fields.items() if k != "ip" or v is not None})
    )


def order_event(
    event_type: str, user_id: str = USER, event_id: uuid.UUID | None = None
) -> OrderEvent:
    order = {
        "id": "ord-1",
        "user_id": user_id,
        "status": {"order.created": "pending"}.get(event_type, event_type.removeprefix("order.")),
        "currency": "EUR",
        "total_minor": 4998,
        "items": [{"sku": "B-1", "quantity": 2, "unit_price_minor": 2499}],
    }
    return OrderEvent.model_validate(envelope(event_type, order, event_id))


def request_for(event: Any) -> NotificationRequestEvent:
    (request,) = requests_for(event, now=NOON)
    return request


def preferences(**off: bool) -> CategoryPreferences:
    """Every switch on except those named `<category>_<channel>=False` (or on with True)."""
    return CategoryPreferences.model_validate(
        {
            category: {c: off.get(f"{category}_{c}", True) for c in CHANNELS}
            for category in ("security", "account", "orders", "marketing")
        }
    )


def contact(**overrides: Any) -> Contact:
    fields: dict[str, Any] = {
        "user_id": USER,
        "email": "ada@example.com",
        "phone": "+33612345678",
        "push_token": "tok-1",
        "locale": "fr-FR",
        "time_zone": "Europe/Paris",
    }
    return Contact.model_validate({**fields, **overrides})


def quiet(start: str, end: str, time_zone: str | None = None) -> QuietHours:
    return QuietHours.model_validate({"start": start, "end": end, "time_zone": time_zone})


def router(*throttles: ThrottleLimit, renderer: TemplateRenderer | None = None) -> Router:
    settings = NotificationSettings(throttles=throttles, contact_wait_s=600, dedupe_ttl_s=3600)
    return Router(settings, renderer or TemplateRenderer())
