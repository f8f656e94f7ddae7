"""A user's effective notification preferences: the row the worker materializes from
`users.events` into PostgreSQL and the API serves, and the change the API accepts.

Switches are on, off or not set (None: the default, on unless the notification is opt-in), per
category and channel; quiet hours; and the time zone and locale the identity platform gave the
user (`user.created`, `user.updated`), which routing uses too but which are not changed here.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict

from schemas.users import CategoryPreferences, QuietHours


class PreferencesView(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    user_id: str
    categories: CategoryPreferences | None = None
    quiet_hours: QuietHours | None = None
    time_zone: str | None = None
    locale: str | None = None
    # The last `user.preferences-updated` applied: what a writer waits to see after a change.
    event_id: UUID | None = None
    # The offset, in the user's partition of `users.events`, of the last event applied: a row
    # is only replaced by one of a later offset (a replay never moves it back).
    revision: int = -1
    updated_at: datetime | None = None


class PreferencesPatch(BaseModel):
    """`PATCH /v1/users/{id}/preferences`: what is named changes, the rest stays. A switch set
    to null goes back to its default; `categories: null` unsets every switch; `quiet_hours:
    null` removes them."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    categories: CategoryPreferences | None = None
    quiet_hours: QuietHours | None = None


def _merge(current: Any, change: Any) -> Any:
    if not isinstance(current, dict) or not isinstance(change, dict):
        return change
    return {**current, **{key: _merge(current.get(key), value) for key, value in change.items()}}


def patched(
    categories: CategoryPreferences | None,
    quiet_hours: QuietHours | None,
    patch: PreferencesPatch,
) -> tuple[CategoryPreferences | None, QuietHours | None]:
    """The complete preferences after `patch` (a snapshot, as `user.preferences-updated` wants):
    only the fields the patch names change, at any depth (JSON merge patch, RFC 7396, except
    that null means "not set" rather than "absent", which for a switch is the same)."""
    change = patch.model_dump(mode="json", exclude_unset=True)
    new_categories = categories
    if "categories" in change:
        base = {} if categories is None else categories.model_dump(mode="json")
        merged = None if change["categories"] is None else _merge(base, change["categories"])
        new_categories = None if merged is None else CategoryPreferences.model_validate(merged)
    new_quiet = patch.quiet_hours if "quiet_hours" in change else quiet_hours
    return new_categories, new_quiet
