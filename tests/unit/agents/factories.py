"""Order events for tests: every field valid, only what a test cares about varies."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from schemas.orders import OrderEvent, OrderEventType, OrderStatus

T0 = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)

EVENT_TYPE_FOR: dict[OrderStatus, OrderEventType] = {
    "pending": "order.created",
    "paid": "order.paid",
    "fulfilled": "order.fulfilled",
    "cancelled": "order.cancelled",
    "refunded": "order.refunded",
}


def order_event(
    order_id: str,
    *,
    at_s: float = 0,
    status: OrderStatus = "pending",
    event_id: uuid.UUID | None = None,
    quantities: tuple[int, ...] = (1,),
    total_minor: int = 1000,
    event_type: OrderEventType | None = None,
) -> OrderEvent:
    occurred_at = T0 + timedelta(seconds=at_s)
    event_id = event_id or uuid.uuid4()
    data: dict[str, Any] = {
        "event_id": event_id,
        "event_type": event_type or EVENT_TYPE_FOR[status],
        "occurred_at": occurred_at,
        "ingested_at": occurred_at + timedelta(seconds=1),
        "source": "test",
        "correlation_id": str(event_id),
        "payload": {
            "id": order_id,
            "user_id": "user-1",
            "status": status,
            "currency": "EUR",
            "total_minor": total_minor,
            "items": [
                {"sku": f"sku-{n}", "quantity": quantity, "unit_price_minor": 100}
                for n, quantity in enumerate(quantities)
            ],
        },
    }
    return OrderEvent.model_validate(data)
