"""Notification events: `notifications.requests`, `.dispatch`, `.status` and `.receipts`.

Every change must stay backward compatible (new fields with defaults, new enum symbols appended,
new payload types appended to the union). `notifications.requests` carries intents and is keyed
by USER id, so that the router sees a user's requests on the same partition as the user's own
events (`users.events`, also keyed by user id) and can join them with its contacts table. The
other three topics are keyed by notification id: one notification is one concrete message on one
channel, and its id is deterministic (from the causing event, the rule and the channel), so that a
re-delivered causing event yields the same id and is never sent twice.

`critical` is a category like the others here, but no user preference can switch it off (see
`schemas.users`): a router must deliver it even to a user who opted out of everything.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AwareDatetime, Field

from schemas.envelope import Contract, Envelope, Text
from schemas.orders import Identifier
from schemas.users import Locale

NotificationCategory = Literal["critical", "security", "account", "orders", "marketing"]
Channel = Literal["email", "sms", "push", "whatsapp"]
# Our own delivery pipeline's view of a notification (symbols only ever appended: see the Avro).
NotificationState = Literal[
    "queued",
    "sent",
    "delivered",
    "failed",
    "suppressed",
    "expired",
    "deferred",
    "sending",
    "retrying",
    "bounced",
    "spam",
    "cancelled",
]
# What a provider reports back about a message it was handed.
ReceiptState = Literal["delivered", "bounced", "failed", "opened", "clicked", "complained"]

ProviderName = Annotated[str, Field(min_length=1, max_length=64)]
ProviderMessageId = Annotated[str, Field(min_length=1, max_length=256)]
TemplateName = Annotated[str, Field(min_length=1, max_length=128)]
RuleName = Annotated[str, Field(min_length=1, max_length=128)]
# An email address, an E.164 phone number or a push device token, depending on the channel.
Recipient = Annotated[str, Field(min_length=1, max_length=4096)]


class NotificationRequested(Contract):
    notification_id: Identifier
    user_id: Identifier
    category: NotificationCategory
    # A template name, such as "order-shipped"; the router renders it per channel and locale.
    template: TemplateName
    # Null: the router picks channels (from the rule named in `rule`, else the preferences).
    channel: Channel | None = None
    # Null: the user's own locale.
    locale: Locale | None = None
    variables: Annotated[
        dict[str, Annotated[str, Field(max_length=4096)]], Field(max_length=64)
    ] = Field(default_factory=dict)
    # The rule that asked for it (null: an external producer).
    rule: RuleName | None = None
    # The event_id of the causing event, and when that event happened (for event->delivered
    # latency).
    caused_by_event_id: Identifier | None = None
    caused_at: AwareDatetime | None = None


class NotificationDispatch(Contract):
    """One concrete, rendered message for one channel and one recipient, ready for a provider."""

    notification_id: Identifier
    user_id: Identifier
    category: NotificationCategory
    channel: Channel
    recipient: Recipient
    locale: Locale
    subject: Annotated[str, Field(max_length=998)] | None
    body: Annotated[str, Field(min_length=1, max_length=65536)]
    template: TemplateName
    rule: RuleName | None
    attempt: Annotated[int, Field(ge=1)]
    caused_at: AwareDatetime | None
    critical: bool


class NotificationStatusChanged(Contract):
    notification_id: Identifier
    user_id: Identifier
    state: NotificationState
    channel: Channel | None = None
    provider: ProviderName | None = None
    provider_message_id: ProviderMessageId | None = None
    # Why it failed or was suppressed (for instance "quiet-hours" or "opted-out").
    reason: Text | None = None
    attempt: Annotated[int, Field(ge=1)] | None = None
    category: NotificationCategory | None = None
    caused_at: AwareDatetime | None = None
    template: TemplateName | None = None


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
NOTIFICATION_DISPATCH_PAYLOADS: dict[str, type[NotificationDispatch]] = {
    "notification.dispatch-requested": NotificationDispatch,
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


class NotificationDispatchEvent(Envelope):
    """An event on `notifications.dispatch`: a rendered message for a channel adapter to send."""

    event_type: Literal["notification.dispatch-requested"]
    payload: NotificationDispatch


class NotificationStatusEvent(Envelope):
    """An event on `notifications.status`: our pipeline moved a notification on."""

    event_type: Literal["notification.status-changed"]
    payload: NotificationStatusChanged


class NotificationReceiptEvent(Envelope):
    """An event on `notifications.receipts`: a provider reported what became of a message."""

    event_type: Literal["notification.receipt-received"]
    payload: NotificationReceipt
