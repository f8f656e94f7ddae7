"""The shared receipt pieces: error paths as a sender writes them, our plain shape, ledger ids."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from streams.errors import ContractViolationError, InvalidSignatureError, MalformedBodyError
from streams.providers.receipts import (
    ReceiptRequest,
    field_path,
    plain_receipts,
    request_id,
    required_header,
)
from tests.unit.fakes import plain_receipts_body

NOW = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)


def test_field_paths_index_lists_with_brackets() -> None:
    assert field_path(("receipts", 3, "state")) == "receipts[3].state"
    assert field_path(("receipts",)) == "receipts"
    assert field_path(()) == "(body)"


def test_a_violation_names_the_receipt_and_field() -> None:
    raw = json.dumps(
        plain_receipts_body("delivered", "delivered", "delivered", "exploded")
    ).encode()
    with pytest.raises(ContractViolationError) as caught:
        plain_receipts(ReceiptRequest(raw, {}, NOW))
    assert [e.field for e in caught.value.errors] == ["receipts[3].state"]


def test_plain_receipts_read_our_shape_and_refuse_what_is_no_json_object() -> None:
    raw = json.dumps(plain_receipts_body("delivered", "opened")).encode()
    items = plain_receipts(ReceiptRequest(raw, {}, NOW))
    assert [(i.notification_id, i.state) for i in items] == [
        ("n-0", "delivered"),
        ("n-1", "opened"),
    ]
    with pytest.raises(MalformedBodyError):
        plain_receipts(ReceiptRequest(b"[]", {}, NOW))


def test_a_natively_signed_request_is_one_ledger_id_per_provider_and_content() -> None:
    assert request_id("meta", b"x") == request_id("meta", b"x")
    assert request_id("meta", b"x") != request_id("meta", b"y")
    assert request_id("meta", b"x").startswith("meta-")
    assert request_id("meta", b"x") != request_id("twilio", b"x")


def test_a_missing_signature_header_is_named() -> None:
    assert required_header({"X-Sig": "v"}, "X-Sig") == "v"
    with pytest.raises(InvalidSignatureError) as caught:
        required_header({"X-Sig": ""}, "X-Sig")
    assert caught.value.header == "X-Sig"
