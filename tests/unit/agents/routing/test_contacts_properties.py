"""Properties of the contacts fold under at-least-once delivery.

`users.events` carries no version the fold could order by: events are applied in partition
order, and the module promises that redelivery is harmless ("every event states values, none
counts"). Redelivery in Kafka means a suffix of the partition read again: after a crash the
worker resumes from its last committed offset, while the table (restored from its changelog) may
already hold the effect of later events. So the property is, for any history h and any
0 <= k <= m <= len(h): fold(h[k:], starting from fold(h[:m])) == fold(h). An event read twice in a
row is the special case k = m - 1 = len(h) - 1.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from hypothesis import example, given, settings
from hypothesis import strategies as st

from agents.routing.contacts import Contact, fold_contact
from schemas.users import UserEvent

NOON = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
USER = "usr-1"
EMAILS = ("ada@example.com", "ada@example.org")
PHONES = ("+33612345678", "+33698765432")


def _event(event_type: str, **payload: Any) -> UserEvent:
    return UserEvent.model_validate(
        {
            "event_id": uuid.uuid4(),
            "event_type": event_type,
            "occurred_at": NOON,
            "ingested_at": NOON,
            "source": "test",
            "correlation_id": "corr-1",
            "payload": {"user_id": USER, **payload},
        }
    )


def _preferences(on: bool) -> UserEvent:
    switches = {"email": on, "sms": on, "push": on, "whatsapp": on}
    return _event(
        "user.preferences-updated",
        categories={c: switches for c in ("security", "account", "orders", "marketing")},
        quiet_hours={"start": "22:00", "end": "07:00"} if on else None,
    )


# A small vocabulary, built once: the fold reads only the payloads, and a few values per field
# make "the same address again" and "another address" both frequent.
VOCABULARY = (
    _event(
        "user.created",
        email=EMAILS[0],
        phone=PHONES[0],
        push_token="tok-1",
        locale="fr-FR",
        time_zone="Europe/Paris",
    ),
    _event("user.created", email=EMAILS[1], locale="en-GB", time_zone="Europe/London"),
    _event("user.verified", contact="email"),
    _event("user.verified", contact="phone"),
    *(_event("user.updated", email=email) for email in EMAILS),
    *(_event("user.updated", phone=phone) for phone in PHONES),
    _event("user.updated", phone_removed=True),
    _event("user.updated", push_token="tok-2"),
    _event("user.updated", locale="en-GB", time_zone="Europe/London"),
    _preferences(True),
    _preferences(False),
    _event("user.deleted", reason="gdpr"),
)
user_events = st.sampled_from(VOCABULARY)


def fold_all(contact: Contact | None, events: list[UserEvent]) -> Contact | None:
    for event in events:
        # Through the table's JSON form, as the router keeps it between events.
        contact = fold_contact(contact, event)
        contact = None if contact is None else Contact.from_table(contact.to_table())
    return contact


@st.composite
def replays(draw: st.DrawFn) -> tuple[list[UserEvent], int, int]:
    history = draw(st.lists(user_events, min_size=1, max_size=8))
    restored = draw(st.integers(0, len(history)))
    resumed = draw(st.integers(0, restored))
    return history, restored, resumed


# The smallest history the property found on the fold as it was: an email verified, then a new
# address. Read again from the start, the table already holds the new address, so the update
# looked like no change and left the replayed verification on an address nobody verified.
@example(replay=([VOCABULARY[2], VOCABULARY[4]], 2, 0))
@example(replay=([VOCABULARY[3], VOCABULARY[8]], 2, 0))
@settings(max_examples=1000)
@given(replay=replays())
def test_reading_a_suffix_again_changes_nothing(
    replay: tuple[list[UserEvent], int, int],
) -> None:
    history, restored, resumed = replay
    once = fold_all(None, history)
    table = fold_all(None, history[:restored])
    assert fold_all(table, history[resumed:]) == once


@settings(max_examples=200)
@given(history=st.lists(user_events, max_size=6), event=user_events)
def test_an_event_read_twice_in_a_row_counts_once(
    history: list[UserEvent], event: UserEvent
) -> None:
    before = fold_all(None, history)
    once = fold_contact(before, event)
    assert fold_contact(once, event) == once
