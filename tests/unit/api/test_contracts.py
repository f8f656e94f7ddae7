"""Raw bytes to contract: 400 for non-objects, 422 listing every failing field."""

from __future__ import annotations

import json
from typing import Any

import pytest

from api.contracts import validate
from schemas.orders import OrderWebhook
from streams.errors import ContractViolationError, MalformedBodyError
from streams.providers.receipts import parse_json_object


def _webhook(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": "order.created",
        "occurred_at": "2026-01-02T03:04:05+00:00",
        "order": {
            "id": "ord-1",
            "user_id": "usr-1",
            "status": "pending",
            "currency": "EUR",
            "total_minor": 1200,
            "items": [{"sku": "sku-1", "quantity": 2, "unit_price_minor": 600}],
        },
    }
    return body | changes


@pytest.mark.parametrize(
    "raw", [b"", b"not json", b"[1, 2]", b'"text"', b"42", b"null", b"\xff\xfe{", b"[" * 100_000]
)
def test_anything_but_a_json_object_is_malformed(raw: bytes) -> None:
    with pytest.raises(MalformedBodyError):
        parse_json_object(raw)


def test_a_json_object_is_parsed() -> None:
    assert parse_json_object(json.dumps(_webhook()).encode()) == _webhook()


def test_a_valid_body_validates() -> None:
    assert validate(OrderWebhook, _webhook()).order.id == "ord-1"


def test_every_failing_field_is_listed_by_its_dotted_path() -> None:
    order = _webhook()["order"] | {
        "currency": "XXX",
        "items": [{"sku": "sku-1", "quantity": 0, "unit_price_minor": 600}],
    }
    body = _webhook(type="order.teleported", order=order, surprise=True)
    del body["occurred_at"]
    with pytest.raises(ContractViolationError) as caught:
        validate(OrderWebhook, body)
    fields = {error.field for error in caught.value.errors}
    assert fields == {"type", "occurred_at", "order.currency", "order.items.0.quantity", "surprise"}
    assert all(error.message for error in caught.value.errors)
