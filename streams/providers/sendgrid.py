"""SendGrid: email over its HTTP API, its Event Webhook of receipts, and that webhook's signature.

- sending: `POST /v3/mail/send`, answered 202 with `X-Message-Id`; our notification id rides in
  `custom_args`;
- receipts: the Event Webhook, a JSON array of events; the id is the `custom_args` value SendGrid
  copies into every event, the message id is `sg_message_id` up to its first dot (the rest names
  SendGrid's internal filter; the part before it is the `X-Message-Id` the send was answered
  with); processed and deferred are no delivery state and are skipped;
- signature: the Signed Event Webhook, an ECDSA (P-256, SHA-256) signature of the timestamp
  header followed by the body, checked with the public key SendGrid shows for the webhook
  (`TRIBUTARY_PROVIDERS_SENDGRID_WEBHOOK_PUBLIC_KEY`, base64 DER); the timestamp must be within
  the webhook tolerance.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Annotated

import aiohttp
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_der_public_key
from pydantic import Field, RootModel

from schemas.provider_receipts import ProviderReceiptItem
from streams.errors import InvalidSignatureError
from streams.providers.base import OutboundMessage, SendResult, credential
from streams.providers.http import HttpSender, message_id_or_unknown
from streams.providers.receipts import (
    MAX_EVENTS,
    OpenModel,
    ReceiptRequest,
    UnixSeconds,
    parse_json,
    receipt_item,
    request_id,
    required_header,
    validated,
)
from streams.settings import ProviderSettings

PROVIDER = "sendgrid"

# Sending


class SendGridSender(HttpSender):
    def __init__(self, session: aiohttp.ClientSession, settings: ProviderSettings) -> None:
        url = f"{settings.sendgrid_base_url.rstrip('/')}/v3/mail/send"
        token = credential(settings.sendgrid_api_key, "providers.sendgrid_api_key")
        super().__init__(PROVIDER, session, url, {"Authorization": f"Bearer {token}"})
        self._from = settings.email_from

    def request_body(self, message: OutboundMessage) -> dict[str, object]:
        """Our notification id rides in `custom_args`, which SendGrid echoes in its events."""
        return {
            "personalizations": [
                {
                    "to": [{"email": message.recipient}],
                    "custom_args": {"notification_id": message.notification_id},
                }
            ],
            "from": {"email": self._from},
            "subject": message.subject or "",
            "content": [{"type": "text/plain", "value": message.body}],
        }

    async def send(self, message: OutboundMessage) -> SendResult:
        headers, _body = await self._post(message, json_body=self.request_body(message))
        return SendResult(PROVIDER, message_id_or_unknown(headers.get("X-Message-Id")))


# Receipts

STATES = {
    "delivered": "delivered",
    "bounce": "bounced",
    "dropped": "failed",
    "spamreport": "complained",
    "open": "opened",
    "click": "clicked",
}


class SendGridEvent(OpenModel):
    event: str
    timestamp: UnixSeconds
    sg_message_id: str | None = None
    notification_id: str | None = None
    reason: str | None = None
    response: str | None = None


class SendGridEvents(RootModel[Annotated[list[SendGridEvent], Field(max_length=MAX_EVENTS)]]):
    pass


def parse_receipts(request: ReceiptRequest) -> list[ProviderReceiptItem]:
    items = []
    for event in validated(SendGridEvents, parse_json(request.body)).root:
        state = STATES.get(event.event)
        if state is None or event.notification_id is None or event.sg_message_id is None:
            continue
        items.append(
            receipt_item(
                notification_id=event.notification_id,
                provider_message_id=event.sg_message_id.split(".", 1)[0],
                state=state,
                occurred_at=datetime.fromtimestamp(event.timestamp, UTC),
                channel="email",
                reason=event.reason or event.response,
            )
        )
    return items


# Signature

SIGNATURE_HEADER = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP_HEADER = "X-Twilio-Email-Event-Webhook-Timestamp"


def verify(
    public_key_b64: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    now_s: float,
    tolerance_s: int,
) -> str:
    """The request's ledger id, or `InvalidSignatureError` naming the header at fault."""
    timestamp = required_header(headers, TIMESTAMP_HEADER)
    signature = required_header(headers, SIGNATURE_HEADER)
    if not timestamp.isdecimal() or abs(now_s - int(timestamp)) > tolerance_s:
        raise InvalidSignatureError(
            f"the timestamp is not within {tolerance_s} s of now", TIMESTAMP_HEADER
        )
    try:
        key = load_der_public_key(base64.b64decode(public_key_b64))
        der_signature = base64.b64decode(signature, validate=True)
    except (ValueError, binascii.Error) as exc:
        raise InvalidSignatureError(f"unreadable signature: {exc}", SIGNATURE_HEADER) from exc
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise InvalidSignatureError("the configured key is not an ECDSA key", SIGNATURE_HEADER)
    signed = timestamp.encode() + body
    try:
        key.verify(der_signature, signed, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature as exc:
        raise InvalidSignatureError("the signature does not match", SIGNATURE_HEADER) from exc
    return request_id(PROVIDER, signed)
