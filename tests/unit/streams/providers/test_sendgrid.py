"""SendGrid's side of receipts: its Event Webhook read into our receipts, and its signature."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from streams.errors import ContractViolationError, InvalidSignatureError, MalformedBodyError
from streams.providers import sendgrid
from streams.providers.receipts import ReceiptRequest
from streams.providers.sendgrid import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify

NOW = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
BODY = b'[{"event":"delivered","timestamp":1795300000}]'
NOW_S = 1_795_300_010


def parse(raw: bytes, **query: str) -> list[dict[str, Any]]:
    items = sendgrid.parse_receipts(ReceiptRequest(raw, query, NOW))
    return [item.model_dump(exclude_none=True) for item in items]


def test_sendgrid_events_carry_our_id_in_custom_args_and_skip_what_is_no_delivery_state() -> None:
    events = [
        {"event": "processed", "timestamp": 1795300000, "sg_message_id": "m1.f1", "x": 1},
        {
            "event": "delivered",
            "timestamp": 1795300001,
            "sg_message_id": "m1.filterdrecv-123.0",
            "notification_id": "n-1",
            "email": "ada@example.com",
        },
        {
            "event": "bounce",
            "timestamp": 1795300002,
            "sg_message_id": "m2.f1",
            "notification_id": "n-2",
            "reason": "550 5.1.1 no such user",
            "type": "bounce",
        },
        {
            "event": "spamreport",
            "timestamp": 1795300003,
            "sg_message_id": "m3.f",
            "notification_id": "n-3",
        },
        {"event": "delivered", "timestamp": 1795300004, "sg_message_id": "m4.f"},  # not ours
    ]
    assert parse(json.dumps(events).encode()) == [
        {
            "notification_id": "n-1",
            "provider_message_id": "m1",
            "state": "delivered",
            "occurred_at": datetime.fromtimestamp(1795300001, UTC),
            "channel": "email",
        },
        {
            "notification_id": "n-2",
            "provider_message_id": "m2",
            "state": "bounced",
            "occurred_at": datetime.fromtimestamp(1795300002, UTC),
            "channel": "email",
            "reason": "550 5.1.1 no such user",
        },
        {
            "notification_id": "n-3",
            "provider_message_id": "m3",
            "state": "complained",
            "occurred_at": datetime.fromtimestamp(1795300003, UTC),
            "channel": "email",
        },
    ]


def test_a_broken_sendgrid_event_is_named_by_its_index_and_field() -> None:
    events = [{"event": "delivered", "timestamp": 1}, {"event": "delivered", "timestamp": "soon"}]
    with pytest.raises(ContractViolationError) as caught:
        parse(json.dumps(events).encode())
    assert [e.field for e in caught.value.errors] == ["[1].timestamp"]
    with pytest.raises(MalformedBodyError):
        parse(b"[{")


def sendgrid_keys() -> tuple[ec.EllipticCurvePrivateKey, str]:
    private = ec.generate_private_key(ec.SECP256R1())
    der = private.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private, base64.b64encode(der).decode()


def sendgrid_headers(
    private: ec.EllipticCurvePrivateKey, timestamp: str, body: bytes
) -> dict[str, str]:
    signature = private.sign(timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    return {SIGNATURE_HEADER: base64.b64encode(signature).decode(), TIMESTAMP_HEADER: timestamp}


def test_sendgrid_signed_event_webhook() -> None:
    private, public = sendgrid_keys()
    headers = sendgrid_headers(private, str(NOW_S), BODY)
    first = verify(public, headers, BODY, now_s=NOW_S, tolerance_s=300)
    assert first == verify(public, headers, BODY, now_s=NOW_S + 1, tolerance_s=300)
    with pytest.raises(InvalidSignatureError) as tampered:
        verify(public, headers, BODY + b" ", now_s=NOW_S, tolerance_s=300)
    assert tampered.value.header == SIGNATURE_HEADER
    with pytest.raises(InvalidSignatureError) as stale:
        verify(public, headers, BODY, now_s=NOW_S + 301, tolerance_s=300)
    assert stale.value.header == TIMESTAMP_HEADER
    _, other_key = sendgrid_keys()
    with pytest.raises(InvalidSignatureError):
        verify(other_key, headers, BODY, now_s=NOW_S, tolerance_s=300)
    with pytest.raises(InvalidSignatureError) as missing:
        verify(public, {TIMESTAMP_HEADER: str(NOW_S)}, BODY, now_s=NOW_S, tolerance_s=300)
    assert missing.value.header == SIGNATURE_HEADER
