"""Providers' own webhook signatures, for receipts posted by the real providers.

Our sandbox (and any relay we run) signs receipts with Standard Webhooks, like every other
webhook here. The real providers sign their own way, and the receipts endpoint accepts that too
when the provider's key is configured:

- sendgrid: the Signed Event Webhook, an ECDSA (P-256, SHA-256) signature of the timestamp
  header followed by the body, checked with the public key SendGrid shows for the webhook
  (`TRIBUTARY_PROVIDERS_SENDGRID_WEBHOOK_PUBLIC_KEY`, base64 DER); the timestamp must be within
  the webhook tolerance;
- twilio: `X-Twilio-Signature`, an HMAC-SHA1 with the account's auth token of the URL Twilio
  called followed by every form field, name then value, sorted by name;
- meta: `X-Hub-Signature-256`, an HMAC-SHA256 of the body with the app secret
  (`TRIBUTARY_PROVIDERS_META_APP_SECRET`).

fcm and smtp have no webhooks of their own, so only Standard Webhooks. A native webhook carries
no delivery id, so a request's id for the duplicate ledger is a digest of what was signed.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Mapping
from urllib.parse import parse_qsl

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_der_public_key

from api.errors import InvalidSignatureError

SENDGRID_SIGNATURE = "X-Twilio-Email-Event-Webhook-Signature"
SENDGRID_TIMESTAMP = "X-Twilio-Email-Event-Webhook-Timestamp"
TWILIO_SIGNATURE = "X-Twilio-Signature"
META_SIGNATURE = "X-Hub-Signature-256"
NATIVE_HEADERS: Mapping[str, str] = {
    "sendgrid": SENDGRID_SIGNATURE,
    "twilio": TWILIO_SIGNATURE,
    "meta": META_SIGNATURE,
}


def request_id(provider: str, signed: bytes) -> str:
    """The ledger id of a natively signed request: the same request resent is the same id."""
    return f"{provider}-{hashlib.sha256(signed).hexdigest()[:40]}"


def _header(headers: Mapping[str, str], name: str) -> str:
    value = headers.get(name)
    if not value:
        raise InvalidSignatureError(f"the {name} header is missing", name)
    return value


def verify_sendgrid(
    public_key_b64: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    now_s: float,
    tolerance_s: int,
) -> str:
    timestamp = _header(headers, SENDGRID_TIMESTAMP)
    signature = _header(headers, SENDGRID_SIGNATURE)
    if not timestamp.isdecimal() or abs(now_s - int(timestamp)) > tolerance_s:
        raise InvalidSignatureError(
            f"the timestamp is not within {tolerance_s} s of now", SENDGRID_TIMESTAMP
        )
    try:
        key = load_der_public_key(base64.b64decode(public_key_b64))
        der_signature = base64.b64decode(signature, validate=True)
    except (ValueError, binascii.Error) as exc:
        raise InvalidSignatureError(f"unreadable signature: {exc}", SENDGRID_SIGNATURE) from exc
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise InvalidSignatureError("the configured key is not an ECDSA key", SENDGRID_SIGNATURE)
    signed = timestamp.encode() + body
    try:
        key.verify(der_signature, signed, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature as exc:
        raise InvalidSignatureError("the signature does not match", SENDGRID_SIGNATURE) from exc
    return request_id("sendgrid", signed)


def twilio_digest(auth_token: str, url: str, form: Mapping[str, str]) -> str:
    payload = url + "".join(f"{name}{form[name]}" for name in sorted(form))
    mac = hmac.new(auth_token.encode(), payload.encode(), hashlib.sha1)
    return base64.b64encode(mac.digest()).decode()


def verify_twilio(auth_token: str, url: str, headers: Mapping[str, str], body: bytes) -> str:
    signature = _header(headers, TWILIO_SIGNATURE)
    try:
        form = dict(parse_qsl(body.decode(), keep_blank_values=True))
    except UnicodeDecodeError as exc:
        raise InvalidSignatureError("the body is not a form", TWILIO_SIGNATURE) from exc
    expected = twilio_digest(auth_token, url, form)
    if not hmac.compare_digest(expected, signature):
        raise InvalidSignatureError("the signature does not match", TWILIO_SIGNATURE)
    return request_id("twilio", url.encode() + body)


def meta_digest(app_secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()


def verify_meta(app_secret: str, headers: Mapping[str, str], body: bytes) -> str:
    signature = _header(headers, META_SIGNATURE)
    if not hmac.compare_digest(meta_digest(app_secret, body), signature):
        raise InvalidSignatureError("the signature does not match", META_SIGNATURE)
    return request_id("meta", body)
