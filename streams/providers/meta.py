"""Meta: WhatsApp over its Cloud API, its status webhooks as receipts, and their signature.

- sending: `POST /{phone number id}/messages`; our notification id goes in
  `biz_opaque_callback_data`, which Meta echoes in its status webhooks;
- receipts: the WhatsApp Cloud API webhook, statuses nested in `entry[].changes[].value`, with
  the id in `biz_opaque_callback_data`; sent is no delivery state and is skipped;
- signature: `X-Hub-Signature-256`, an HMAC-SHA256 of the body with the app secret
  (`TRIBUTARY_PROVIDERS_META_APP_SECRET`).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Annotated

import aiohttp
from pydantic import Field

from schemas.provider_receipts import ProviderReceiptItem
from streams.errors import InvalidSignatureError
from streams.providers.base import OutboundMessage, SendResult, credential
from streams.providers.http import HttpSender, body_field, message_id_or_unknown
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

PROVIDER = "meta"
API_VERSION = "v21.0"

# Sending


class MetaSender(HttpSender):
    def __init__(self, session: aiohttp.ClientSession, settings: ProviderSettings) -> None:
        base = settings.meta_base_url.rstrip("/")
        url = f"{base}/{API_VERSION}/{settings.meta_phone_number_id}/messages"
        token = credential(settings.meta_access_token, "providers.meta_access_token")
        super().__init__(PROVIDER, session, url, {"Authorization": f"Bearer {token}"})

    def request_body(self, message: OutboundMessage) -> dict[str, object]:
        """`biz_opaque_callback_data` is echoed in Meta's status webhooks: our id goes there."""
        return {
            "messaging_product": "whatsapp",
            "to": message.recipient,
            "type": "text",
            "text": {"body": message.body},
            "biz_opaque_callback_data": message.notification_id,
        }

    async def send(self, message: OutboundMessage) -> SendResult:
        _headers, body = await self._post(message, json_body=self.request_body(message))
        return SendResult(PROVIDER, message_id_or_unknown(_message_id(body)))


def _message_id(body: object) -> object:
    """`messages[0].id` of the answer, if it has that shape."""
    messages = body_field(body, "messages")
    return body_field(messages[0], "id") if isinstance(messages, list) and messages else None


# Receipts

STATES = {"delivered": "delivered", "read": "opened", "failed": "failed"}


class MetaError(OpenModel):
    code: int
    title: str


class MetaStatus(OpenModel):
    id: str
    status: str
    timestamp: UnixSeconds
    biz_opaque_callback_data: str | None = None
    errors: list[MetaError] = Field(default_factory=list)


class MetaValue(OpenModel):
    statuses: list[MetaStatus] = Field(default_factory=list)


class MetaChange(OpenModel):
    field: str
    value: MetaValue


class MetaEntry(OpenModel):
    changes: list[MetaChange]


class MetaWebhook(OpenModel):
    object: str
    entry: Annotated[list[MetaEntry], Field(max_length=MAX_EVENTS)]


def parse_receipts(request: ReceiptRequest) -> list[ProviderReceiptItem]:
    items = []
    hook = validated(MetaWebhook, parse_json(request.body))
    for entry in hook.entry:
        for change in entry.changes:
            for status in change.value.statuses:
                state = STATES.get(status.status)
                if state is None or not status.biz_opaque_callback_data:
                    continue
                error = status.errors[0] if status.errors else None
                items.append(
                    receipt_item(
                        notification_id=status.biz_opaque_callback_data,
                        provider_message_id=status.id,
                        state=state,
                        occurred_at=datetime.fromtimestamp(status.timestamp, UTC),
                        channel="whatsapp",
                        reason=f"{error.code} {error.title}" if error else None,
                    )
                )
    return items


# Signature

SIGNATURE_HEADER = "X-Hub-Signature-256"


def digest(app_secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()


def verify(app_secret: str, headers: Mapping[str, str], body: bytes) -> str:
    """The request's ledger id, or `InvalidSignatureError` naming the header at fault."""
    signature = required_header(headers, SIGNATURE_HEADER)
    if not hmac.compare_digest(digest(app_secret, body), signature):
        raise InvalidSignatureError("the signature does not match", SIGNATURE_HEADER)
    return request_id(PROVIDER, body)
