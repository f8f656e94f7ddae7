"""Standard Webhooks verification: every way a signature can be wrong is a 401 naming a header."""

from __future__ import annotations

import base64

import pytest

from api.signature import (
    ID_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    secret_key,
    sign,
    signed_headers,
    verify,
)
from streams.errors import ConfigurationError, InvalidSignatureError

SECRET = "whsec_" + base64.b64encode(b"k" * 32).decode()
OTHER_SECRET = "whsec_" + base64.b64encode(b"o" * 32).decode()
NOW_S = 1_700_000_000
TOLERANCE_S = 300
BODY = b'{"type": "order.created"}'
WEBHOOK_ID = "msg_2f1c"


def _verify(headers: dict[str, str], body: bytes = BODY, now_s: float = NOW_S) -> str:
    return verify(SECRET, headers, body, now_s=now_s, tolerance_s=TOLERANCE_S)


def _headers(timestamp_s: int = NOW_S, secret: str = SECRET, body: bytes = BODY) -> dict[str, str]:
    return signed_headers(secret, WEBHOOK_ID, timestamp_s, body)


def _rejected(headers: dict[str, str], body: bytes = BODY, now_s: float = NOW_S) -> str:
    """The header the rejection names."""
    with pytest.raises(InvalidSignatureError) as caught:
        _verify(headers, body, now_s)
    return caught.value.header


def test_the_specifications_example_signature_is_reproduced() -> None:
    # The example from the Standard Webhooks specification and its reference libraries.
    signature = sign(
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        "msg_p5jXN8AQM9LWM0D4loKWxJek",
        1614265330,
        b'{"test": 2432232314}',
    )
    assert signature == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_a_correctly_signed_webhook_yields_its_id() -> None:
    assert _verify(_headers()) == WEBHOOK_ID


def test_one_valid_signature_among_several_suffices_for_key_rotation() -> None:
    headers = _headers()
    valid = headers[SIGNATURE_HEADER]
    stale = sign(OTHER_SECRET, WEBHOOK_ID, NOW_S, BODY)
    headers[SIGNATURE_HEADER] = f"{stale} v1a,c29tZXRoaW5nIGVsc2U= {valid}"
    assert _verify(headers) == WEBHOOK_ID


def test_signatures_of_other_versions_are_ignored() -> None:
    headers = _headers()
    digest = headers[SIGNATURE_HEADER].removeprefix("v1,")
    headers[SIGNATURE_HEADER] = f"v2,{digest}"
    assert _rejected(headers) == SIGNATURE_HEADER


def test_a_signature_made_with_another_secret_is_rejected() -> None:
    assert _rejected(_headers(secret=OTHER_SECRET)) == SIGNATURE_HEADER


def test_a_tampered_body_is_rejected() -> None:
    assert _rejected(_headers(), body=BODY.replace(b"created", b"cancelled")) == SIGNATURE_HEADER


def test_a_signature_cannot_be_moved_to_another_webhook_id() -> None:
    headers = _headers() | {ID_HEADER: "msg_other"}
    assert _rejected(headers) == SIGNATURE_HEADER


def test_a_signature_cannot_be_moved_to_another_timestamp() -> None:
    headers = _headers() | {TIMESTAMP_HEADER: str(NOW_S + 1)}
    assert _rejected(headers) == SIGNATURE_HEADER


@pytest.mark.parametrize("skew_s", [-TOLERANCE_S, TOLERANCE_S, 0])
def test_timestamps_within_the_tolerance_either_way_are_accepted(skew_s: int) -> None:
    assert _verify(_headers(timestamp_s=NOW_S + skew_s)) == WEBHOOK_ID


@pytest.mark.parametrize("skew_s", [-TOLERANCE_S - 1, TOLERANCE_S + 1])
def test_timestamps_beyond_the_tolerance_either_way_are_rejected(skew_s: int) -> None:
    assert _rejected(_headers(timestamp_s=NOW_S + skew_s)) == TIMESTAMP_HEADER


@pytest.mark.parametrize("header", [ID_HEADER, TIMESTAMP_HEADER, SIGNATURE_HEADER])
def test_a_missing_header_is_named(header: str) -> None:
    headers = _headers()
    del headers[header]
    assert _rejected(headers) == header


@pytest.mark.parametrize("header", [ID_HEADER, TIMESTAMP_HEADER, SIGNATURE_HEADER])
def test_a_blank_header_counts_as_missing(header: str) -> None:
    assert _rejected(_headers() | {header: "  "}) == header


@pytest.mark.parametrize("timestamp", ["soon", "-5", "1700000000.5", "0x6553f100", "1e9"])
def test_a_timestamp_that_is_not_whole_unix_seconds_is_rejected(timestamp: str) -> None:
    assert _rejected(_headers() | {TIMESTAMP_HEADER: timestamp}) == TIMESTAMP_HEADER


@pytest.mark.parametrize("webhook_id", ["msg 1", "x" * 257, "msg\u00e9"])
def test_a_malformed_webhook_id_is_rejected(webhook_id: str) -> None:
    assert _rejected(_headers() | {ID_HEADER: webhook_id}) == ID_HEADER


@pytest.mark.parametrize("signature", ["v1", "v1,", "v1,not base64!", "nonsense", "v1;abc="])
def test_a_signature_header_without_a_decodable_v1_entry_is_rejected(signature: str) -> None:
    assert _rejected(_headers() | {SIGNATURE_HEADER: signature}) == SIGNATURE_HEADER


def test_the_secret_prefix_is_optional_and_a_malformed_secret_is_a_configuration_error() -> None:
    assert secret_key(SECRET) == secret_key(SECRET.removeprefix("whsec_")) == b"k" * 32
    with pytest.raises(ConfigurationError):
        secret_key("whsec_not base64!")
    with pytest.raises(ConfigurationError):
        secret_key("whsec_")
