"""Notification events: the reserved `notifications.requests`, `.status` and `.receipts` contracts.

These are first versions, reserved so that the topics, subjects and ids exist from the start; the
notification work will grow them, and every change must stay backward compatible (new fields with
defaults, new payload types appended to the union). All three topics are keyed by notification id.

`critical` is a category like the others here, but no user preference can switch it off (see
`schemas.users`): a router must deliver it even to a user who opted out of everything.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from schemas.envelope import Contract, Envelope, Text
from schemas.orders import Identifier
from schemas.users import Locale

NotificationCategory = Literal["critical", "security", "account", "orders", "marketing"]
Channel = Literal["email", "sms", "push", "whatsapp"]
# Our own delivery pipeline's view of a notification.
NotificationState = Literal["queued", "sent", "delivered", "failed", "suppressed", "expired"]
# What a provider reports back about a message it was handed.
ReceiptState = Literal["delivered", "bounced", "failed", "opened", "clicked", "complained"]

ProviderName = Annotated[str, Field(min_length=1, max_length=64)]
ProviderMessageId = Annotated[str, Field(min_length=1, max_length=256)]


class NotificationRequested(Contract):
    notification_id: Identifier
    user_id: Identifier
    category: NotificationCategory
    # A template name, such as "order-shipped"; rendering happens at delivery.
    template: Annotated[str, Field(min_length=1, max_length=128)]
    # Null: the router picks channels from the user's preferences.
    channel: Channel | None = None
    # Null: the user's own locale.
    locale: Locale | None = None
    variables: Annotated[
        dict[str, Annotated[str, Field(max_length=4096)]], Field(max_length=64)
    ] = {}


class NotificationStatusChanged(Contract):
    notification_id: Identifier
    user_id: Identifier
    state: NotificationState
    channel: Channel | None = None
    provider: ProviderName | None = None
    provider_message_id: ProviderMessageId | None = None
    # Why it failed or was suppressed (for instance "quiet-hours" or "opted-out").
    reason: Text | None = None


class NotificationReceipt(Contract):
    notification_id: Identifier
    provider: ProviderName
    provider_message_id: ProviderMessageId
    state: ReceiptState
    # Providers rarely know our users, so the receipt may not name one.
    user_id: Identifier | None = None
    channel: Channel | None = None
    reason: Text | None = None


NOTIFICATION_REQUEST_PAYLOADS: dict[str, type[NotificationRequested]] = {
    "notification.requested": NotificationRequested,
}
NOTIFICATION_STATUS_PAYLOADS: dict[str, type[NotificationStatusChanged]] = {
    "notification.status-changed": NotificationStatusChanged,
}
NOTIFICATION_RECEIPT_PAYLOADS: dict[str, type[NotificationReceipt]] = {
    "notification.receipt-received": NotificationReceipt,
}


class NotificationRequestEvent(Envelope):
    """An event on `notifications.requests`: something asks for a user to be notified."""

    event_type: Literal["notification.requested"]
    payload: NotificationRequested


class NotificationStatusEvent(Envelope):
    """An event on `notifications.status`: our pipeline moved a notification on."""

    event_type: Literal["notification.status-changed"]
    payload: NotificationStatusChanged


class NotificationReceiptEvent(Envelope):
    """An event on `notifications.receipts`: a provider reported what became of a message."""

    event_type: Literal["notification.receipt-received"]
    payload: NotificationReceipt
