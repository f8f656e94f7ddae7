"""Twilio: SMS over its HTTP API, its status callbacks as receipts, and their signature.

- sending: a form POST to `Messages.json`, answered 201 with `{"sid": ...}`; Twilio has no custom
  fields, so our notification id travels in the query of the send's `StatusCallback` URL;
- receipts: one status callback per message, form-encoded, posted to that URL, whose query
  carries the id; Twilio sends no event time, so it is the arrival time; queued and sent are no
  delivery state and are skipped;
- signature: `X-Twilio-Signature`, an HMAC-SHA1 with the account's auth token of the URL Twilio
  called followed by every form field, name then value, sorted by name.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from urllib.parse import parse_qsl, urlencode

import aiohttp

from schemas.provider_receipts import ProviderReceiptItem
from streams.errors import InvalidSignatureError, MalformedBodyError
from streams.providers.base import OutboundMessage, SendResult, credential
from streams.providers.http import HttpSender, body_field, message_id_or_unknown
from streams.providers.receipts import (
    OpenModel,
    ReceiptRequest,
    receipt_item,
    request_id,
    required_header,
    validated,
)
from streams.settings import ProviderSettings

PROVIDER = "twilio"

# Sending


class TwilioSender(HttpSender):
    idempotency_header = "I-Twilio-Idempotency-Token"

    def __init__(self, session: aiohttp.ClientSession, settings: ProviderSettings) -> None:
        base = settings.twilio_base_url.rstrip("/")
        sid = settings.twilio_account_sid
        url = f"{base}/2010-04-01/Accounts/{sid}/Messages.json"
        token = credential(settings.twilio_auth_token, "providers.twilio_auth_token")
        credentials = f"{sid}:{token}".encode()
        headers = {"Authorization": f"Basic {base64.b64encode(credentials).decode()}"}
        super().__init__(PROVIDER, session, url, headers)
        self._from = settings.twilio_from
        self._callback = settings.twilio_status_callback_url

    def form(self, message: OutboundMessage) -> dict[str, str]:
        """Twilio has no custom fields: our id travels in the status callback URL's query."""
        separator = "&" if "?" in self._callback else "?"
        query = urlencode({"notification_id": message.notification_id})
        return {
            "To": message.recipient,
            "From": self._from,
            "Body": message.body,
            "StatusCallback": f"{self._callback}{separator}{query}",
        }

    async def send(self, message: OutboundMessage) -> SendResult:
        _headers, body = await self._post(message, form=self.form(message))
        return SendResult(PROVIDER, message_id_or_unknown(body_field(body, "sid")))


# Receipts

STATES = {"delivered": "delivered", "undelivered": "bounced", "failed": "failed"}
STATES |= {"read": "opened"}


class TwilioStatus(OpenModel):
    MessageSid: str
    MessageStatus: str
    ErrorCode: str | None = None
    ErrorMessage: str | None = None


def parse_receipts(request: ReceiptRequest) -> list[ProviderReceiptItem]:
    try:
        form = dict(parse_qsl(request.body.decode(), keep_blank_values=True, strict_parsing=True))
    except ValueError as exc:  # UnicodeDecodeError is one
        raise MalformedBodyError(f"the body is not a UTF-8 form: {exc}") from exc
    status = validated(TwilioStatus, form)
    state = STATES.get(status.MessageStatus)
    # The callback URL's query when Twilio's own signature covered the URL (the API passes the
    # query only then), else a form field, which every signature covers.
    notification_id = request.query.get("notification_id") or form.get("notification_id")
    if state is None or not notification_id:
        return []
    reason = None
    if status.ErrorCode:
        reason = f"error {status.ErrorCode}" + (
            f": {status.ErrorMessage}" if status.ErrorMessage else ""
        )
    return [
        receipt_item(
            notification_id=notification_id,
            provider_message_id=status.MessageSid,
            state=state,
            occurred_at=request.received_at,
            channel="sms",
            reason=reason,
        )
    ]


# Signature

SIGNATURE_HEADER = "X-Twilio-Signature"


def digest(auth_token: str, url: str, form: Mapping[str, str]) -> str:
    payload = url + "".join(f"{name}{form[name]}" for name in sorted(form))
    mac = hmac.new(auth_token.encode(), payload.encode(), hashlib.sha1)
    return base64.b64encode(mac.digest()).decode()


def verify(auth_token: str, url: str, headers: Mapping[str, str], body: bytes) -> str:
    """The request's ledger id, or `InvalidSignatureError`; `url` is the one Twilio called."""
    signature = required_header(headers, SIGNATURE_HEADER)
    try:
        form = dict(parse_qsl(body.decode(), keep_blank_values=True))
    except UnicodeDecodeError as exc:
        raise InvalidSignatureError("the body is not a form", SIGNATURE_HEADER) from exc
    expected = digest(auth_token, url, form)
    if not hmac.compare_digest(expected, signature):
        raise InvalidSignatureError("the signature does not match", SIGNATURE_HEADER)
    return request_id(PROVIDER, url.encode() + body)
