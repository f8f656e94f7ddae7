"""The body of `POST /v1/webhooks/providers/{provider}`: delivery receipts, as providers batch them.

Providers report many messages per request (every few hundred milliseconds), so the body is a
list; each entry becomes one `NotificationReceiptEvent` on `notifications.receipts`. The bounds
(1..500) keep one request within one produce round and the API's body limit.
"""

from __future__ import annotations

from typing import Annotated, Literal, get_args

from pydantic import AwareDatetime, Field

from schemas.envelope import Contract, Text
from schemas.notifications import Channel, ProviderMessageId, ReceiptState
from schemas.orders import Identifier

# The providers whose receipts we accept: the URL path segment, and `NotificationReceipt.provider`.
ReceiptProvider = Literal["sendgrid", "smtp", "twilio", "fcm", "meta"]
RECEIPT_PROVIDERS: tuple[str, ...] = get_args(ReceiptProvider)
MAX_RECEIPTS = 500


class ProviderReceiptItem(Contract):
    notification_id: Identifier
    provider_message_id: ProviderMessageId
    state: ReceiptState
    # When the provider saw it happen: the transition's time, not our arrival time.
    occurred_at: AwareDatetime
    channel: Channel | None = None
    reason: Text | None = None


class ProviderReceiptsBody(Contract):
    receipts: Annotated[list[ProviderReceiptItem], Field(min_length=1, max_length=MAX_RECEIPTS)]
