"""A user's contact points and notification preferences, folded from `users.events`.

The router keeps one `Contact` per user id in its `contacts` table. The fold is pure and total:
each event type sets what it carries and leaves the rest, so the record after a run of events is
the same however often an event is redelivered (every event states values, none counts, and
none depends on the record it meets: a partition read again from an earlier offset meets a
record that already holds later events). A `user.deleted` yields None: the caller erases the
entry, and nothing of the user is kept.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from schemas.notifications import Channel, NotificationCategory
from schemas.users import (
    CategoryPreferences,
    QuietHours,
    UserCreated,
    UserDeleted,
    UserEvent,
    UserPreferencesUpdated,
    UserUpdated,
    UserVerified,
)


class Contact(BaseModel):
    """Where and how a user may be notified; None fields are not known (yet)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    user_id: str
    # How the user is addressed; kept to tell whether an update changed it.
    name: str | None = None
    email: str | None = None
    phone: str | None = None
    push_token: str | None = None
    locale: str | None = None
    time_zone: str | None = None
    email_verified: bool = False
    phone_verified: bool = False
    # None: the user never set preferences; every channel counts as on, except opt-in ones.
    preferences: CategoryPreferences | None = None
    quiet_hours: QuietHours | None = None

    def recipient(self, channel: Channel) -> str | None:
        """The address on `channel`, or None when the user cannot be reached on it."""
        if channel == "email":
            return self.email
        if channel == "push":
            return self.push_token
        return self.phone  # sms and whatsapp both go to the phone number

    def switched_on(self, category: NotificationCategory, channel: Channel) -> bool | None:
        """The user's switch for `channel` in `category`; None when they never set one."""
        if category == "critical" or self.preferences is None:
            return None
        switches = getattr(self.preferences, category)
        if switches is None:
            return None
        value: bool | None = getattr(switches, channel)
        return value

    def to_table(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    @classmethod
    def from_table(cls, value: dict[str, Any]) -> Contact:
        return cls.model_validate(value)


def fold_contact(contact: Contact | None, event: UserEvent) -> Contact | None:
    """The contact record after `event`; None once the user is deleted."""
    payload = event.payload
    if isinstance(payload, UserDeleted):
        return None
    current = contact or Contact(user_id=payload.user_id)
    changes: dict[str, Any] = {}
    if isinstance(payload, UserCreated):
        changes = {
            "email": payload.email,
            "phone": payload.phone,
            "locale": payload.locale,
            "time_zone": payload.time_zone,
            "push_token": payload.push_token,
            "name": payload.name,
        }
    elif isinstance(payload, UserUpdated):
        changes = _updated_fields(payload)
    elif isinstance(payload, UserVerified):
        changes = {"email_verified" if payload.contact == "email" else "phone_verified": True}
    elif isinstance(payload, UserPreferencesUpdated):
        changes = {"preferences": payload.categories, "quiet_hours": payload.quiet_hours}
    return current.model_copy(update=changes)


def _updated_fields(payload: UserUpdated) -> dict[str, Any]:
    changes: dict[str, Any] = {
        name: value
        for name in ("email", "phone", "locale", "time_zone", "push_token", "name")
        if (value := getattr(payload, name)) is not None
    }
    if payload.phone_removed:
        changes["phone"] = None
    # A new address is not the one the user proved they own. An update names only what changed,
    # so naming an address resets its verification even when the record already holds it: after
    # a crash the table may already hold the new address while the partition is read again from
    # before it, and the replayed `user.verified` of the old one must not stick to the new one.
    if "email" in changes:
        changes["email_verified"] = False
    if "phone" in changes:
        changes["phone_verified"] = False
    return changes
