"""Standard Webhooks signatures (https://www.standardwebhooks.com): signing and verifying.

The signed content is `{webhook-id}.{webhook-timestamp}.{raw body}`, so the id and timestamp
cannot be swapped onto another body, and the timestamp tolerance bounds replays. The
`webhook-signature` header may carry several space-separated `v1,<base64>` signatures so that a
sender can rotate its secret without downtime; one valid signature suffices. Pure functions, the
clock passed in (`now_s`), so every edge is unit-testable. Signing itself lives in
`streams/webhook_signature.py` (the provider sandbox signs with it too) and is re-exported here.
"""

from __future__ import annotations

import base64
import hmac
import re
from collections.abc import Mapping

from streams.errors import InvalidSignatureError
from streams.webhook_signature import (
    ID_HEADER,
    SECRET_PREFIX,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    VERSION,
    secret_key,
    sign,
    signed_headers,
)
from streams.webhook_signature import digest as _digest

__all__ = [
    "ID_HEADER",
    "MAX_ID_CHARS",
    "SECRET_PREFIX",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "VERSION",
    "secret_key",
    "sign",
    "signed_headers",
    "verify",
]

MAX_ID_CHARS = 256

_TIMESTAMP = re.compile(r"[0-9]{1,15}")
_WEBHOOK_ID = re.compile(rf"[\x21-\x7e]{{1,{MAX_ID_CHARS}}}")


def verify(
    secret: str, headers: Mapping[str, str], body: bytes, now_s: float, tolerance_s: int
) -> str:
    """Return the verified webhook id, or raise `InvalidSignatureError` naming the bad header.

    `headers` must look names up case-insensitively if the caller's names are not lower case
    (aiohttp's request headers do).
    """
    webhook_id = _required(headers, ID_HEADER)
    if not _WEBHOOK_ID.fullmatch(webhook_id):
        raise InvalidSignatureError(
            f"{ID_HEADER} must be 1 to {MAX_ID_CHARS} printable characters without spaces",
            ID_HEADER,
        )
    timestamp = _fresh_timestamp(_required(headers, TIMESTAMP_HEADER), now_s, tolerance_s)
    candidates = _signatures(_required(headers, SIGNATURE_HEADER))
    expected = _digest(secret_key(secret), webhook_id, timestamp, body)
    # Every candidate is compared, valid or not, so timing does not reveal which one matched.
    matched = [hmac.compare_digest(expected, candidate) for candidate in candidates]
    if not any(matched):
        raise InvalidSignatureError("no signature matches the body", SIGNATURE_HEADER)
    return webhook_id


def _required(headers: Mapping[str, str], name: str) -> str:
    value = headers.get(name, "").strip()
    if not value:
        raise InvalidSignatureError(f"the {name} header is missing", name)
    return value


def _fresh_timestamp(raw: str, now_s: float, tolerance_s: int) -> str:
    if not _TIMESTAMP.fullmatch(raw):
        raise InvalidSignatureError(
            f"{TIMESTAMP_HEADER} must be whole Unix seconds", TIMESTAMP_HEADER
        )
    skew_s = now_s - int(raw)
    if abs(skew_s) > tolerance_s:
        direction = "old" if skew_s > 0 else "in the future"
        raise InvalidSignatureError(
            f"{TIMESTAMP_HEADER} is {abs(skew_s):.0f} s {direction}; tolerance is {tolerance_s} s",
            TIMESTAMP_HEADER,
        )
    return raw


def _signatures(raw: str) -> list[bytes]:
    """The decodable v1 signatures; other versions are for other verifiers and are skipped."""
    candidates: list[bytes] = []
    for entry in raw.split():
        version, _, encoded = entry.partition(",")
        if version != VERSION:
            continue
        try:
            candidates.append(base64.b64decode(encoded, validate=True))
        except ValueError:  # binascii.Error, or a str that is not ASCII
            continue
    if not candidates:
        raise InvalidSignatureError(
            f"{SIGNATURE_HEADER} holds no {VERSION},<base64> signature", SIGNATURE_HEADER
        )
    return candidates
