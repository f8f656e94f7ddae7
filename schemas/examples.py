"""One valid example of every event type: webhook bodies and the events they become.

For the people who integrate with us (documentation, `tributary produce` templates) and for the
tests, which must exercise every event type, not just the ones someone remembered. Optional
fields are all filled in, so that a round trip through the wire format proves they survive.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel

from schemas.contracts import BY_EVENT_TYPE, CONTRACTS

OCCURRED_AT = "2026-11-21T10:15:00.250+01:00"
EXAMPLE_EVENT_ID = UUID("0b9e3f1c-5a4d-4e8b-9c3a-2f1e0d7c6b5a")
EXAMPLE_INGESTED_AT = datetime(2026, 11, 21, 9, 15, 1, 500_000, tzinfo=UTC)

_SWITCHES = {"email": True, "sms": False, "push": True, "whatsapp": False}
_ORDER = {
    "id": "ord_1001",
    "user_id": "usr_42",
    "status": "paid",
    "currency": "EUR",
    "total_minor": 4998,
    "items": [
        {"sku": "BOOK-1", "quantity": 2, "unit_price_minor": 1999},
        {"sku": "PEN-7", "quantity": 1, "unit_price_minor": 1000},
    ],
}

# The payload of each event type as JSON, with the field names of the Avro payload record.
PAYLOADS: dict[str, dict[str, Any]] = {
    "user.created": {
        "user_id": "usr_42",
        "email": "ada@example.com",
        "phone": "+33612345678",
        "locale": "fr-FR",
        "time_zone": "Europe/Paris",
        "push_token": "fcm-token-42",
        "name": "Ada Lovelace",
    },
    "user.verified": {"user_id": "usr_42", "contact": "phone"},
    "user.updated": {
        "user_id": "usr_42",
        "email": "ada@example.org",
        "phone": None,
        "phone_removed": True,
        "locale": "en-GB",
        "time_zone": "Europe/London",
        "push_token": "fcm-token-43",
        "name": "Ada King",
    },
    "user.preferences-updated": {
        "user_id": "usr_42",
        "categories": {
            "security": _SWITCHES,
            "account": _SWITCHES,
            "orders": {**_SWITCHES, "whatsapp": True},
            "marketing": {"email": False, "sms": False, "push": False, "whatsapp": False},
        },
        "quiet_hours": {"start": "22:00", "end": "07:30", "time_zone": "Europe/Paris"},
    },
    "user.deleted": {"user_id": "usr_42", "reason": "user request"},
    "auth.login-succeeded": {
        "user_id": "usr_42",
        "ip": "203.0.113.7",
        "user_agent": "Mozilla/5.0",
        "device_id": "dev_9",
        "session_id": "ses_1",
    },
    "auth.login-failed": {
        "user_id": "usr_42",
        "ip": "2001:db8::7",
        "user_agent": "curl/8.5",
        "device_id": "dev_10",
        "reason": "bad_password",
    },
    "auth.logout": {"user_id": "usr_42", "session_id": "ses_1", "device_id": "dev_9"},
    "auth.password-reset-requested": {
        "user_id": "usr_42",
        "ip": "203.0.113.7",
        "user_agent": "Mozilla/5.0",
    },
    "auth.password-changed": {
        "user_id": "usr_42",
        "ip": "203.0.113.7",
        "user_agent": "Mozilla/5.0",
        "via_reset": True,
    },
    "auth.session-revoked": {"user_id": "usr_42", "session_id": "ses_1", "reason": "stolen"},
    "auth.suspicious-login": {
        "user_id": "usr_42",
        "reason": "brute-force",
        "ip": "198.51.100.23",
        "device_id": "dev_10",
        "related_event_ids": ["5c1f2a7e-8d3b-4f6a-9e0c-1b2d3e4f5a6b"],
        "evidence": {"failed_attempts": "12", "window_s": "300"},
    },
    **{event_type: _ORDER for event_type in BY_EVENT_TYPE if event_type.startswith("order.")},
    "notification.requested": {
        "notification_id": "ntf_7",
        "user_id": "usr_42",
        "category": "orders",
        "template": "order-shipped",
        "channel": "email",
        "locale": "fr-FR",
        "variables": {"order_id": "ord_1001"},
        "rule": "order-fulfilled-shipped",
        "caused_by_event_id": "5c1f2a7e-8d3b-4f6a-9e0c-1b2d3e4f5a6b",
        "caused_at": "2026-11-21T10:14:59.125+01:00",
    },
    "notification.dispatch-requested": {
        "notification_id": "ntf_7",
        "user_id": "usr_42",
        "category": "orders",
        "channel": "email",
        "recipient": "ada@example.com",
        "locale": "fr-FR",
        "subject": "Votre commande ord_1001 est en route",
        "body": "Bonjour, votre commande ord_1001 a été expédiée.",
        "template": "order-shipped",
        "rule": "order-fulfilled-shipped",
        "attempt": 1,
        "caused_at": "2026-11-21T10:14:59.125+01:00",
        "critical": False,
    },
    "notification.status-changed": {
        "notification_id": "ntf_7",
        "user_id": "usr_42",
        "state": "sent",
        "channel": "email",
        "provider": "postmark",
        "provider_message_id": "pm-123",
        "reason": None,
        "attempt": 1,
        "category": "orders",
        "caused_at": "2026-11-21T10:14:59.125+01:00",
        "template": "order-shipped",
    },
    "notification.receipt-received": {
        "notification_id": "ntf_7",
        "provider": "postmark",
        "provider_message_id": "pm-123",
        "state": "bounced",
        "user_id": "usr_42",
        "channel": "email",
        "reason": "mailbox full",
    },
    "suppression.reported": {
        "user_id": "usr_42",
        "notification_id": "ntf_7",
        "channel": "email",
        "problem": "hard_bounce",
        "reason": "550 5.1.1 mailbox does not exist",
    },
    "suppression.lifted": {
        "user_id": "usr_42",
        "channel": "email",
        "address": "ada@example.com",
        "reason": "lifted via the API",
    },
}


def webhook_body(event_type: str) -> dict[str, Any]:
    """A JSON webhook body for `event_type`; `KeyError` for a type that has no webhook."""
    contract = BY_EVENT_TYPE[event_type]
    if contract.webhook is None or event_type not in contract.webhook.event_types:
        raise KeyError(f"{event_type} does not arrive by webhook")
    payload = dict(PAYLOADS[event_type])
    if contract.family == "users":
        payload["id"] = payload.pop("user_id")
    return {
        "type": event_type,
        "occurred_at": OCCURRED_AT,
        "correlation_id": "corr-1",
        contract.webhook.payload_field: payload,
    }


def event(event_type: str) -> BaseModel:
    """An envelope of `event_type` with every optional field set, as it travels on its topic."""
    model: type[BaseModel] = BY_EVENT_TYPE[event_type].event_model
    return model.model_validate(
        {
            "event_id": EXAMPLE_EVENT_ID,
            "event_type": event_type,
            "occurred_at": OCCURRED_AT,
            "ingested_at": EXAMPLE_INGESTED_AT,
            "source": "example",
            "correlation_id": "corr-1",
            "causation_id": "5c1f2a7e-8d3b-4f6a-9e0c-1b2d3e4f5a6b",
            "payload": PAYLOADS[event_type],
        }
    )


EVENT_TYPES: tuple[str, ...] = tuple(t for contract in CONTRACTS for t in contract.event_types)
