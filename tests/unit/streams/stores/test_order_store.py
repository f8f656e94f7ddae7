from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from schemas.orders import OrderView
from streams.stores.order_store import latest_per_order

T0 = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


def _view(order_id: str, minutes: int, status: str = "pending") -> OrderView:
    at = T0 + timedelta(minutes=minutes)
    return OrderView.model_validate(
        {
            "order_id": order_id,
            "user_id": "u",
            "status": status,
            "currency": "EUR",
            "total_minor": 1,
            "item_count": 1,
            "last_event_id": uuid.uuid4(),
            "last_event_type": "order.created",
            "last_event_at": at,
            "created_at": T0,
            "updated_at": at,
        }
    )


def test_one_row_per_order_and_the_newest_wins_whatever_the_order() -> None:
    newest = _view("a", 5, "paid")
    views = [_view("a", 1), newest, _view("b", 2), _view("a", 3)]
    latest = {view.order_id: view for view in latest_per_order(views)}
    assert set(latest) == {"a", "b"}
    assert latest["a"] == newest
