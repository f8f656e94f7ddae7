from __future__ import annotations

import copy
from typing import Any

import pytest
from pydantic import ValidationError

from schemas.orders import ORDER_EVENT_TYPES, OrderWebhook


def _body(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": "order.created",
        "occurred_at": "2026-11-21T10:15:00+01:00",
        "order": {
            "id": "ord_1",
            "user_id": "usr_1",
            "status": "pending",
            "currency": "EUR",
            "total_minor": 2500,
            "items": [{"sku": "A-1", "quantity": 1, "unit_price_minor": 2500}],
        },
    }
    body.update(changes)
    return body


def _failing_fields(body: dict[str, Any]) -> set[str]:
    with pytest.raises(ValidationError) as caught:
        OrderWebhook.model_validate(body)
    return {".".join(str(p) for p in error["loc"]) for error in caught.value.errors()}


@pytest.mark.parametrize("event_type", ORDER_EVENT_TYPES)
def test_every_order_type_carries_the_same_order(event_type: str) -> None:
    parsed = OrderWebhook.model_validate(_body(type=event_type))
    assert parsed.type == event_type
    assert parsed.order.total_minor == 2500


def test_occurred_at_keeps_its_offset() -> None:
    parsed = OrderWebhook.model_validate(_body())
    assert parsed.occurred_at.utcoffset() is not None
    assert parsed.occurred_at.isoformat() == "2026-11-21T10:15:00+01:00"


def test_every_failing_field_is_named() -> None:
    body = _body(type="order.exploded", occurred_at="yesterday")
    order = body["order"]
    order["currency"] = "EURO"
    order["total_minor"] = -1
    order["items"][0]["quantity"] = 0
    del order["user_id"]
    assert _failing_fields(body) == {
        "type",
        "occurred_at",
        "order.currency",
        "order.total_minor",
        "order.items.0.quantity",
        "order.user_id",
    }


def test_naive_timestamps_are_rejected() -> None:
    assert _failing_fields(_body(occurred_at="2026-11-21T10:15:00")) == {"occurred_at"}


def test_unknown_currency_is_rejected() -> None:
    body = _body()
    body["order"]["currency"] = "XYZ"
    assert _failing_fields(body) == {"order.currency"}


@pytest.mark.parametrize(
    ("field", "value"),
    [("total_minor", "2500"), ("total_minor", 25.0), ("status", "lost"), ("id", ""), ("items", [])],
)
def test_order_fields_are_strict(field: str, value: Any) -> None:
    body = copy.deepcopy(_body())
    body["order"][field] = value
    failing = _failing_fields(body)
    assert failing
    assert all(name.startswith(f"order.{field}") for name in failing)


def test_unknown_fields_are_rejected() -> None:
    assert _failing_fields(_body(extra="x")) == {"extra"}
