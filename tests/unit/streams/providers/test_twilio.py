"""Twilio's side of receipts: status callbacks read into our receipts, and their signature."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from streams.errors import ContractViolationError, InvalidSignatureError
from streams.providers import twilio
from streams.providers.receipts import ReceiptRequest
from streams.providers.twilio import SIGNATURE_HEADER, digest, verify

NOW = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)


def parse(raw: bytes, **query: str) -> list[dict[str, Any]]:
    items = twilio.parse_receipts(ReceiptRequest(raw, query, NOW))
    return [item.model_dump(exclude_none=True) for item in items]


def test_twilio_callbacks_are_forms_with_our_id_in_the_callback_query() -> None:
    form = b"MessageSid=SM1&MessageStatus=undelivered&ErrorCode=30003&ErrorMessage=Unreachable"
    assert parse(form, notification_id="n-1") == [
        {
            "notification_id": "n-1",
            "provider_message_id": "SM1",
            "state": "bounced",
            "occurred_at": NOW,
            "channel": "sms",
            "reason": "error 30003: Unreachable",
        }
    ]
    assert parse(b"MessageSid=SM1&MessageStatus=sent", notification_id="n-1") == []
    assert parse(b"MessageSid=SM1&MessageStatus=delivered") == []  # not ours
    with pytest.raises(ContractViolationError) as caught:
        parse(b"MessageStatus=delivered", notification_id="n-1")
    assert [e.field for e in caught.value.errors] == ["MessageSid"]


def test_twilio_signature_follows_twilios_documented_example() -> None:
    # The example of Twilio's webhook security documentation.
    url = "https://mycompany.com/myapp.php?foo=1&bar=2"
    form = {
        "CallSid": "CA1234567890ABCDE",
        "Caller": "+12349013030",
        "Digits": "1234",
        "From": "+12349013030",
        "To": "+18005551212",
    }
    assert digest("12345", url, form) == "0/KCTR6DLpKmkAf8muzZqo1nDgQ="


def test_twilio_callbacks_are_checked_over_url_and_sorted_fields() -> None:
    url = "https://hooks.example.com/v1/webhooks/providers/twilio?notification_id=n-1"
    body = b"MessageStatus=delivered&MessageSid=SM1"
    signature = digest("token", url, {"MessageSid": "SM1", "MessageStatus": "delivered"})
    verify("token", url, {SIGNATURE_HEADER: signature}, body)
    with pytest.raises(InvalidSignatureError):  # another notification's URL
        verify("token", url.replace("n-1", "n-2"), {SIGNATURE_HEADER: signature}, body)
    with pytest.raises(InvalidSignatureError):
        verify("other-token", url, {SIGNATURE_HEADER: signature}, body)


def test_the_id_may_ride_in_the_signed_form_when_the_query_is_not_signed() -> None:
    form = b"MessageSid=SM1&MessageStatus=delivered&notification_id=n-9"
    assert [item["notification_id"] for item in parse(form)] == ["n-9"]
