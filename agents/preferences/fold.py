"""A user's effective preferences after one `users.events` event. Pure.

Only what preferences are made of is kept: switches and quiet hours (`user.preferences-updated`,
a snapshot), time zone and locale (`user.created`, `user.updated`). The same fields the
router's `contacts` fold takes, so the API shows what routing applies. `user.deleted` erases the
row (None).
"""

from __future__ import annotations

from datetime import datetime

from schemas.preferences import PreferencesView
from schemas.users import (
    UserCreated,
    UserDeleted,
    UserEvent,
    UserPreferencesUpdated,
    UserUpdated,
)


def fold_preferences(
    view: PreferencesView | None, event: UserEvent, offset: int, now: datetime
) -> PreferencesView | None:
    """The row after `event` (read at `offset`); None once the user is deleted. An event that
    changes nothing here (a verification, a new email address) still moves the revision."""
    payload = event.payload
    if isinstance(payload, UserDeleted):
        return None
    current = view or PreferencesView(user_id=payload.user_id)
    changes: dict[str, object] = {"revision": offset}
    if isinstance(payload, UserCreated):
        changes |= {"time_zone": payload.time_zone, "locale": payload.locale, "updated_at": now}
    elif isinstance(payload, UserUpdated):
        named = {"time_zone": payload.time_zone, "locale": payload.locale}
        changes |= {name: value for name, value in named.items() if value is not None}
        if len(changes) > 1:
            changes["updated_at"] = now
    elif isinstance(payload, UserPreferencesUpdated):
        changes |= {
            "categories": payload.categories,
            "quiet_hours": payload.quiet_hours,
            "event_id": event.event_id,
            "updated_at": now,
        }
    return current.model_copy(update=changes)
