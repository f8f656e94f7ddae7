"""User events from the upstream identity platform: the `users.events` contract.

Every payload carries `user_id`, the record key, so that a consumer of a single event can tell
whose it is without the key. In the webhook body the same identifier is `user.id`.

Notification preferences: a `user.preferences-updated` event carries the user's complete
preferences (a snapshot, not a patch), so the latest event alone is the current state, whatever
was lost or replayed before it. A switch may be on, off or not set (null, the default: on
unless the notification is opt-in), so a snapshot can say "as by default" and a reset is a
snapshot with no switch set. The categories that can be switched off are security, account,
orders and marketing. There is deliberately no `critical` entry: critical notifications (account
takeover, legal notices) are always delivered on every channel and ignore quiet hours, and a
contract that cannot express switching them off is safer than one that rejects it at runtime.
"""

from __future__ import annotations

from datetime import time
from functools import cache
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    AwareDatetime,
    Field,
    ValidationInfo,
    ValidatorFunctionWrapHandler,
    field_validator,
    model_validator,
)

from schemas.envelope import Contract, CorrelationId, Envelope, Text, select_payload
from schemas.orders import Identifier

USER_EVENT_TYPES: tuple[str, ...] = (
    "user.created",
    "user.verified",
    "user.updated",
    "user.preferences-updated",
    "user.deleted",
)
UserEventType = Literal[
    "user.created",
    "user.verified",
    "user.updated",
    "user.preferences-updated",
    "user.deleted",
]

Email = Annotated[str, Field(min_length=3, max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")]
# E.164: a plus, a country code and at most 15 digits in all.
Phone = Annotated[str, Field(pattern=r"^\+[1-9][0-9]{6,14}$")]
# BCP 47 language tag, such as "en", "fr-CA" or "zh-Hant-TW".
Locale = Annotated[str, Field(max_length=35, pattern=r"^[A-Za-z]{2,8}(-[A-Za-z0-9]{1,8})*$")]
# A push device token (FCM registration token or similar), opaque to us.
PushToken = Annotated[str, Field(min_length=1, max_length=4096)]
# How the user is addressed (a display name), as the identity platform holds it.
DisplayName = Annotated[str, Field(min_length=1, max_length=256)]


@cache
def _is_time_zone(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def _known_time_zone(name: str) -> str:
    if not _is_time_zone(name):
        raise ValueError("must be an IANA time zone, such as Europe/Paris or UTC")
    return name


TimeZone = Annotated[str, Field(min_length=1, max_length=64), AfterValidator(_known_time_zone)]


def _wall_clock_minute(value: time) -> time:
    if value.tzinfo is not None:
        raise ValueError("must be a wall-clock time without offset; the time zone is separate")
    if value.second or value.microsecond:
        raise ValueError("must be a whole minute, such as 22:00")
    return value


WallClock = Annotated[time, AfterValidator(_wall_clock_minute)]
Switch = Annotated[bool, Field(strict=True)]


class UserCreated(Contract):
    user_id: Identifier
    email: Email
    phone: Phone | None = None
    locale: Locale
    time_zone: TimeZone
    push_token: PushToken | None = None
    name: DisplayName | None = None


class UserVerified(Contract):
    user_id: Identifier
    # Which contact point the user proved they own.
    contact: Literal["email", "phone"] = "email"


class UserUpdated(Contract):
    """The fields that changed; a null field did not change (`phone_removed` clears the phone)."""

    user_id: Identifier
    email: Email | None = None
    phone: Phone | None = None
    phone_removed: Switch = False
    locale: Locale | None = None
    time_zone: TimeZone | None = None
    push_token: PushToken | None = None
    name: DisplayName | None = None

    @model_validator(mode="after")
    def _changes_something(self) -> UserUpdated:
        if self.phone is not None and self.phone_removed:
            raise ValueError("phone and phone_removed contradict each other")
        changes = (self.email, self.phone, self.locale, self.time_zone, self.push_token, self.name)
        if all(change is None for change in changes) and not self.phone_removed:
            raise ValueError("a user.updated event must change at least one field")
        return self


class ChannelSwitches(Contract):
    """On, off, or not set (None: the default, on unless the notification is opt-in)."""

    email: Switch | None = None
    sms: Switch | None = None
    push: Switch | None = None
    whatsapp: Switch | None = None


class CategoryPreferences(Contract):
    """None for a category: no switch of it set."""

    security: ChannelSwitches | None = None
    account: ChannelSwitches | None = None
    orders: ChannelSwitches | None = None
    marketing: ChannelSwitches | None = None


class QuietHours(Contract):
    """No notification (except critical ones) from `start` to `end`; 22:00-07:00 spans midnight."""

    start: WallClock
    end: WallClock
    # Null: the user's own time zone (from user.created / user.updated).
    time_zone: TimeZone | None = None

    @model_validator(mode="after")
    def _not_empty(self) -> QuietHours:
        if self.start == self.end:
            raise ValueError("start and end must differ")
        return self


class UserPreferencesUpdated(Contract):
    user_id: Identifier
    # None: no switch set, the defaults (what a reset of the preferences produces).
    categories: CategoryPreferences | None = None
    quiet_hours: QuietHours | None = None


class UserDeleted(Contract):
    """The user is erased: every consumer must drop what it keeps about them."""

    user_id: Identifier
    reason: Text | None = None


UserPayload = UserCreated | UserVerified | UserUpdated | UserPreferencesUpdated | UserDeleted

USER_PAYLOADS: dict[str, type[UserPayload]] = {
    "user.created": UserCreated,
    "user.verified": UserVerified,
    "user.updated": UserUpdated,
    "user.preferences-updated": UserPreferencesUpdated,
    "user.deleted": UserDeleted,
}

# The webhook object names the user `id`; the payload (and the Avro record) `user_id`.
_WEBHOOK_RENAMES = {"id": "user_id", "user_id": "id"}


class UserWebhook(Contract):
    """The body an upstream platform POSTs to `/v1/webhooks/users`; `user` depends on `type`."""

    type: UserEventType
    occurred_at: AwareDatetime
    correlation_id: CorrelationId | None = None
    user: UserPayload

    @field_validator("user", mode="wrap")
    @classmethod
    def _user_for_type(
        cls, value: Any, _handler: ValidatorFunctionWrapHandler, info: ValidationInfo
    ) -> Any:
        return select_payload(value, info.data.get("type"), USER_PAYLOADS, _WEBHOOK_RENAMES)


class UserEvent(Envelope):
    """A user event as it travels on `users.events`."""

    event_type: UserEventType
    payload: UserPayload

    @field_validator("payload", mode="wrap")
    @classmethod
    def _payload_for_type(
        cls, value: Any, _handler: ValidatorFunctionWrapHandler, info: ValidationInfo
    ) -> Any:
        return select_payload(value, info.data.get("event_type"), USER_PAYLOADS)
