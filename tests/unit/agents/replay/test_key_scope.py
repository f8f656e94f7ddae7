"""What `tributary replay sessions --since` rests on: the rows of a user are a function of that
user's own records, so folding only the records of some users (from the beginning, in batches
cut anywhere, among no other users' records) gives those users exactly the rows that folding
everything gives. The replay then replaces those users' rows only (`KeyScope`)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from contextlib import nullcontext
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from agents.replay.views import Dropped
from agents.retry import Backoff
from agents.sessions.tracker import SessionTracker
from schemas.auth import AuthEvent
from schemas.sessions import DeviceView, SessionView
from streams.kafka.wire import decode, encode
from streams.runtime import SourceRecord

T0 = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
USERS = ("u1", "u2", "u3")
SESSIONS = st.sampled_from(("s1", "s2", "s3"))
MAX_DEVICES = 2


class UpsertedRows:
    """The view as PostgreSQL keeps it: one row per key, replaced only by a revision at least as
    new (`streams.stores.session_store`)."""

    def __init__(self) -> None:
        self.rows: dict[tuple[str, str, str], BaseModel] = {}

    async def write(self, sessions: Sequence[SessionView], devices: Sequence[DeviceView]) -> int:
        keyed = [(("s", s.user_id, s.session_id), s) for s in sessions] + [
            (("d", d.user_id, d.device_id), d) for d in devices
        ]
        for key, row in keyed:
            held = self.rows.get(key)
            if held is None or held.revision <= row.revision:  # type: ignore[attr-defined]
                self.rows[key] = row
        return len(keyed)

    def of(self, users: set[str]) -> dict[tuple[str, str, str], BaseModel]:
        return {key: row for key, row in self.rows.items() if key[1] in users}


def _event(user: str, event_type: str, at_s: int, payload: dict[str, Any]) -> AuthEvent:
    event_id = uuid.uuid4()
    occurred_at = T0 + timedelta(seconds=at_s)
    return AuthEvent.model_validate(
        {
            "event_id": event_id,
            "event_type": event_type,
            "occurred_at": occurred_at,
            "ingested_at": occurred_at,
            "source": "test",
            "correlation_id": f"c-{event_id}",
            "payload": {"user_id": user} | payload,
        }
    )


times = st.integers(0, 40)
users = st.sampled_from(USERS)
events = st.one_of(
    st.builds(
        lambda user, at, s, d, c: _event(
            user,
            "auth.login-succeeded",
            at,
            {"ip": "203.0.113.7", "session_id": s, "device_id": d, "country": c},
        ),
        users,
        times,
        st.none() | SESSIONS,
        st.none() | st.sampled_from(("d1", "d2", "d3")),
        st.none() | st.sampled_from(("FR", "DE")),
    ),
    st.builds(
        lambda user, at, s: _event(user, "auth.logout", at, {"session_id": s}),
        users,
        times,
        SESSIONS,
    ),
    st.builds(
        lambda user, at, s: _event(user, "auth.session-revoked", at, {"session_id": s}),
        users,
        times,
        SESSIONS,
    ),
    st.builds(
        lambda user, at, s: _event(user, "auth.password-changed", at, {"session_id": s}),
        users,
        times,
        st.none() | SESSIONS,
    ),
)


def fold(records: list[SourceRecord], batch_events: int) -> UpsertedRows:
    rows = UpsertedRows()
    tracker: SessionTracker[SourceRecord] = SessionTracker(
        table={},
        decode=lambda raw: decode(raw, AuthEvent),
        encode=encode,
        rows=rows,
        alerts=Dropped(),
        describe=lambda record: record,
        scope=lambda _record: nullcontext(),
        max_devices=MAX_DEVICES,
        backoff=Backoff(),
    )

    async def run() -> None:
        for start in range(0, len(records), batch_events):
            await tracker.process(records[start : start + batch_events])

    asyncio.run(run())
    return rows


@settings(max_examples=100, deadline=None)
@given(
    history=st.lists(events, min_size=1, max_size=40),
    scoped=st.sets(users, min_size=1),
    batch_events=st.integers(1, 7),
    scoped_batch_events=st.integers(1, 7),
)
def test_folding_some_users_only_gives_them_the_rows_a_full_fold_gives(
    history: list[AuthEvent], scoped: set[str], batch_events: int, scoped_batch_events: int
) -> None:
    records = [
        SourceRecord("t-auth.events", 0, n, key=e.payload.user_id.encode(), value=encode(e))  # type: ignore[union-attr]
        for n, e in enumerate(history)
    ]
    everything = fold(records, batch_events)
    keys = {user.encode() for user in scoped}
    some = fold([r for r in records if r.key in keys], scoped_batch_events)
    assert some.rows == everything.of(scoped)
