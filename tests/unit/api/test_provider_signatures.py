"""The providers' own webhook signatures: what passes, what does not, and the ledger ids."""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from api.errors import InvalidSignatureError
from api.provider_signatures import (
    META_SIGNATURE,
    SENDGRID_SIGNATURE,
    SENDGRID_TIMESTAMP,
    TWILIO_SIGNATURE,
    meta_digest,
    twilio_digest,
    verify_meta,
    verify_sendgrid,
    verify_twilio,
)

BODY = b'[{"event":"delivered","timestamp":1795300000}]'
NOW_S = 1_795_300_010


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
    return {SENDGRID_SIGNATURE: base64.b64encode(signature).decode(), SENDGRID_TIMESTAMP: timestamp}


def test_sendgrid_signed_event_webhook() -> None:
    private, public = sendgrid_keys()
    headers = sendgrid_headers(private, str(NOW_S), BODY)
    first = verify_sendgrid(public, headers, BODY, now_s=NOW_S, tolerance_s=300)
    assert first == verify_sendgrid(public, headers, BODY, now_s=NOW_S + 1, tolerance_s=300)
    with pytest.raises(InvalidSignatureError) as tampered:
        verify_sendgrid(public, headers, BODY + b" ", now_s=NOW_S, tolerance_s=300)
    assert tampered.value.header == SENDGRID_SIGNATURE
    with pytest.raises(InvalidSignatureError) as stale:
        verify_sendgrid(public, headers, BODY, now_s=NOW_S + 301, tolerance_s=300)
    assert stale.value.header == SENDGRID_TIMESTAMP
    _, other_key = sendgrid_keys()
    with pytest.raises(InvalidSignatureError):
        verify_sendgrid(other_key, headers, BODY, now_s=NOW_S, tolerance_s=300)
    with pytest.raises(InvalidSignatureError) as missing:
        verify_sendgrid(
            public, {SENDGRID_TIMESTAMP: str(NOW_S)}, BODY, now_s=NOW_S, tolerance_s=300
        )
    assert missing.value.header == SENDGRID_SIGNATURE


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
    assert twilio_digest("12345", url, form) == "0/KCTR6DLpKmkAf8muzZqo1nDgQ="


def test_twilio_callbacks_are_checked_over_url_and_sorted_fields() -> None:
    url = "https://hooks.example.com/v1/webhooks/providers/twilio?notification_id=n-1"
    body = b"MessageStatus=delivered&MessageSid=SM1"
    signature = twilio_digest("token", url, {"MessageSid": "SM1", "MessageStatus": "delivered"})
    verify_twilio("token", url, {TWILIO_SIGNATURE: signature}, body)
    with pytest.raises(InvalidSignatureError):  # another notification's URL
        verify_twilio("token", url.replace("n-1", "n-2"), {TWILIO_SIGNATURE: signature}, body)
    with pytest.raises(InvalidSignatureError):
        verify_twilio("other-token", url, {TWILIO_SIGNATURE: signature}, body)


def test_meta_hub_signature() -> None:
    header = {META_SIGNATURE: meta_digest("app-secret", BODY)}
    assert header[META_SIGNATURE].startswith("sha256=")
    verify_meta("app-secret", header, BODY)
    with pytest.raises(InvalidSignatureError):
        verify_meta("app-secret", header, BODY[:-1])
    with pytest.raises(InvalidSignatureError) as missing:
        verify_meta("app-secret", {}, BODY)
    assert missing.value.header == META_SIGNATURE
