"""The provider receipts webhook body: bounds and per-receipt validation."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from schemas.provider_receipts import MAX_RECEIPTS, ProviderReceiptsBody


def item(**changes: Any) -> dict[str, Any]:
    base = {
        "notification_id": "n-1",
        "provider_message_id": "msg-1",
        "state": "delivered",
        "occurred_at": "2026-11-22T09:00:00Z",
        "channel": "email",
    }
    return base | changes


def error_locations(body: dict[str, Any]) -> list[tuple[int | str, ...]]:
    with pytest.raises(ValidationError) as caught:
        ProviderReceiptsBody.model_validate(body)
    return [error["loc"] for error in caught.value.errors()]


def test_a_valid_body_with_optional_fields_left_out() -> None:
    body = ProviderReceiptsBody.model_validate(
        {"receipts": [item(), item(state="complained", reason="marked as spam", channel=None)]}
    )
    assert [r.state for r in body.receipts] == ["delivered", "complained"]


def test_an_empty_or_oversized_batch_is_refused() -> None:
    assert error_locations({"receipts": []}) == [("receipts",)]
    assert error_locations({"receipts": [item()] * (MAX_RECEIPTS + 1)}) == [("receipts",)]


def test_each_bad_field_is_located_in_its_receipt() -> None:
    body = {"receipts": [item(), item(), item(), item(state="lost", occurred_at="yesterday")]}
    assert error_locations(body) == [("receipts", 3, "state"), ("receipts", 3, "occurred_at")]


def test_naive_times_and_unknown_fields_are_refused() -> None:
    body = {"receipts": [item(occurred_at="2026-11-22T09:00:00", extra=1)]}
    assert sorted(error_locations(body)) == [
        ("receipts", 0, "extra"),
        ("receipts", 0, "occurred_at"),
    ]
