"""Status and receipt events for delivery tracking tests: valid, only what matters varies."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from schemas.notifications import NotificationReceiptEvent, NotificationStatusEvent

T0 = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def status_event(
    notification_id: str, state: str, at_s: float, **payload: Any
) -> NotificationStatusEvent:
    event_id = uuid.uuid4()
    return NotificationStatusEvent.model_validate(
        {
            "event_id": event_id,
            "event_type": "notification.status-changed",
            "occurred_at": at(at_s),
            "ingested_at": at(at_s + 1),
            "source": "test",
            "correlation_id": str(event_id),
            "payload": {
                "notification_id": notification_id,
                "user_id": "user-1",
                "state": state,
                "channel": "email",
                "category": "account",
                "template": "welcome",
                "caused_at": T0 - timedelta(seconds=1),
            }
            | payload,
        }
    )


def receipt_event(
    notification_id: str, state: str, at_s: float, **payload: Any
) -> NotificationReceiptEvent:
    event_id = uuid.uuid4()
    return NotificationReceiptEvent.model_validate(
        {
            "event_id": event_id,
            "event_type": "notification.receipt-received",
            "occurred_at": at(at_s),
            "ingested_at": at(at_s + 1),
            "source": "provider:sendgrid",
            "correlation_id": notification_id,
            "payload": {
                "notification_id": notification_id,
                "provider": "sendgrid",
                "provider_message_id": f"msg-{notification_id}",
                "state": state,
                "channel": "email",
            }
            | payload,
        }
    )
