"""Standard Webhooks signing (https://www.standardwebhooks.com), shared by every sender we run.

The signed content is `{webhook-id}.{webhook-timestamp}.{raw body}`. The API verifies with these
same functions (`api/signature.py`), and the provider sandbox signs its delivery receipts with
them, so there is one definition of the format and the sandbox needs nothing from `api`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac

from streams.errors import ConfigurationError

ID_HEADER = "webhook-id"
TIMESTAMP_HEADER = "webhook-timestamp"
SIGNATURE_HEADER = "webhook-signature"
SECRET_PREFIX = "whsec_"  # noqa: S105 - a format marker, not a secret
VERSION = "v1"


def secret_key(secret: str) -> bytes:
    """The HMAC key: the base64 part of a `whsec_<base64>` secret."""
    try:
        key = base64.b64decode(secret.removeprefix(SECRET_PREFIX), validate=True)
    except binascii.Error as exc:
        raise ConfigurationError("the webhook secret is not whsec_<base64>") from exc
    if not key:
        raise ConfigurationError("the webhook secret is empty")
    return key


def digest(key: bytes, webhook_id: str, timestamp: str, body: bytes) -> bytes:
    content = f"{webhook_id}.{timestamp}.".encode() + body
    return hmac.new(key, content, hashlib.sha256).digest()


def sign(secret: str, webhook_id: str, timestamp_s: int, body: bytes) -> str:
    """The `webhook-signature` header value a sender holding `secret` would send."""
    signature = digest(secret_key(secret), webhook_id, str(timestamp_s), body)
    return f"{VERSION},{base64.b64encode(signature).decode()}"


def signed_headers(secret: str, webhook_id: str, timestamp_s: int, body: bytes) -> dict[str, str]:
    """All three Standard Webhooks headers, as a sender (script, test, sandbox) sends them."""
    return {
        ID_HEADER: webhook_id,
        TIMESTAMP_HEADER: str(timestamp_s),
        SIGNATURE_HEADER: sign(secret, webhook_id, timestamp_s, body),
    }
