"""The sessions fold without Kafka: sessions opened, refreshed and ended, devices, alerts."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from agents.security.signals import REASON_NEW_DEVICE, alert_id
from agents.sessions.state import (
    REASON_NEW_COUNTRY,
    Applied,
    UserSessions,
    apply,
    carried_over,
)
from schemas.auth import AuthEvent, SuspiciousLogin

T0 = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
MAX_DEVICES = 3


def event(event_type: str, at_s: float = 0, **payload: Any) -> AuthEvent:
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
            "payload": {"user_id": "u1"} | payload,
        }
    )


def login(session_id: str | None, at_s: float = 0, **payload: Any) -> AuthEvent:
    fields = {"ip": "203.0.113.7", "session_id": session_id} | payload
    return event("auth.login-succeeded", at_s, **fields)


class User:
    """One user's entry, round-tripped through the table's JSON as the agent does."""

    def __init__(self) -> None:
        self.entry: dict[str, Any] | None = None

    def feed(self, item: AuthEvent) -> Applied:
        state = UserSessions.from_entry("u1", self.entry)
        applied = apply(state, item, MAX_DEVICES)
        self.entry = state.to_entry()
        return applied

    @property
    def state(self) -> UserSessions:
        return UserSessions.from_entry("u1", self.entry)

    def active(self) -> set[str]:
        return {sid for sid, s in self.state.sessions.items() if s.active}


def reason(alert: AuthEvent) -> str:
    assert isinstance(alert.payload, SuspiciousLogin)
    return alert.payload.reason


def test_a_login_opens_a_session_and_another_refreshes_it() -> None:
    user = User()
    first = login("s1", device_id="laptop", user_agent="Firefox")
    (opened,) = user.feed(first).sessions
    assert (opened.session_id, opened.started_at, opened.logins) == ("s1", T0, 1)
    assert opened.opened_by == first.event_id
    (refreshed,) = user.feed(login("s1", 30, device_id="laptop", ip="198.51.100.9")).sessions
    assert refreshed.started_at == T0
    assert refreshed.last_seen_at == T0 + timedelta(seconds=30)
    assert (refreshed.ip, refreshed.logins) == ("198.51.100.9", 2)
    assert refreshed.revision > opened.revision
    (device,) = user.state.devices.values()
    assert (device.login_count, device.last_ip, device.flagged) == (2, "198.51.100.9", False)
    assert device.first_seen_at == T0


def test_a_login_without_a_session_id_is_a_session_of_its_own() -> None:
    user = User()
    user.feed(login(None))
    user.feed(login(None, 5))
    assert len(user.active()) == 2


def test_logout_and_revocation_end_one_session() -> None:
    user = User()
    for n, sid in enumerate(("s1", "s2", "s3")):
        user.feed(login(sid, n, device_id=f"d{n}"))
    (ended,) = user.feed(event("auth.logout", 10, session_id="s1")).sessions
    assert (ended.session_id, ended.end_reason) == ("s1", "logout")
    assert ended.ended_at == T0 + timedelta(seconds=10)
    (revoked,) = user.feed(event("auth.session-revoked", 11, session_id="s2")).sessions
    assert (revoked.session_id, revoked.end_reason) == ("s2", "revoked")
    assert user.active() == {"s3"}
    # Without a session id a logout ends the device's sessions.
    user.feed(event("auth.logout", 12, device_id="d2"))
    assert user.active() == set()


def test_a_password_change_ends_every_other_session() -> None:
    user = User()
    for n, sid in enumerate(("s1", "s2", "s3")):
        user.feed(login(sid, n))
    applied = user.feed(event("auth.password-changed", 10, session_id="s2"))
    assert {s.session_id for s in applied.sessions} == {"s1", "s3"}
    assert {s.end_reason for s in applied.sessions} == {"password-changed"}
    assert user.active() == {"s2"}
    # A session opened after the change is not ended by it, even if the change arrives late.
    user.feed(login("s4", 30))
    user.feed(event("auth.password-changed", 20))
    assert user.active() == {"s4"}


def test_a_revoked_session_that_logs_in_again_is_a_new_session() -> None:
    user = User()
    user.feed(login("s1"))
    user.feed(event("auth.session-revoked", 10, session_id="s1"))
    again = login("s1", 20)
    (session,) = user.feed(again).sessions
    assert session.active
    assert (session.started_at, session.opened_by, session.logins) == (
        T0 + timedelta(seconds=20),
        again.event_id,
        1,
    )
    # A login from before the revocation, arriving late, reopens nothing.
    user.feed(event("auth.session-revoked", 30, session_id="s1"))
    assert user.feed(login("s1", 25)).sessions == ()
    assert user.active() == set()


def test_an_end_older_than_the_session_leaves_it_alone() -> None:
    user = User()
    user.feed(login("s1", 10))
    assert user.feed(event("auth.logout", 5, session_id="s1")).sessions == ()
    assert user.active() == {"s1"}


def test_the_first_device_is_learned_quietly_and_a_new_one_alerts() -> None:
    user = User()
    assert user.feed(login("s1", device_id="laptop")).alerts == ()
    assert user.feed(login("s2", 1, device_id="laptop")).alerts == ()
    new = login("s3", 2, device_id="phone", ip="192.0.2.1")
    (alert,) = user.feed(new).alerts
    body = alert.payload
    assert isinstance(body, SuspiciousLogin)
    assert (body.reason, body.device_id, body.ip) == (REASON_NEW_DEVICE, "phone", "192.0.2.1")
    assert body.evidence["known_devices"] == "1"
    assert body.related_event_ids == [new.event_id]
    assert alert.event_id == alert_id(REASON_NEW_DEVICE, "u1", new.event_id)
    assert user.state.devices["phone"].flagged
    # A replay is not counted twice, and repeats the very same alert.
    assert user.feed(new).alerts == (alert,)
    assert user.state.devices["phone"].login_count == 1


def test_a_login_from_a_new_country_alerts_when_the_event_carries_one() -> None:
    user = User()
    assert user.feed(login("s1", device_id="d", country="FR")).alerts == ()
    assert user.feed(login("s2", 1, device_id="d")).alerts == ()
    (alert,) = user.feed(login("s3", 2, device_id="d", country="BR")).alerts
    assert reason(alert) == REASON_NEW_COUNTRY
    assert isinstance(alert.payload, SuspiciousLogin)
    assert alert.payload.evidence["known_countries"] == "FR"
    assert user.feed(login("s4", 3, device_id="d", country="BR")).alerts == ()


def test_known_devices_are_capped_least_recently_seen_forgotten() -> None:
    user = User()
    for n, device in enumerate(["a", "b", "c", "d"]):
        user.feed(login(f"s{n}", n, device_id=device))
    assert set(user.state.devices) == {"b", "c", "d"}


def test_alerts_and_other_types_change_nothing() -> None:
    user = User()
    user.feed(login("s1"))
    before = user.entry
    assert user.feed(event("auth.login-failed", 1, ip="203.0.113.7")) == Applied()
    assert user.entry == before


# The old security rule's entry (`security-users`): [device id, first event id, flagged].
LEGACY = {
    "window": {"failures": [], "alerted_ms": None, "trigger": None},
    "devices": [["phone", str(uuid.uuid4()), True], ["laptop", str(uuid.uuid4()), False]],
}


def carried_user(legacy: Any = LEGACY) -> User:
    user = User()
    user.entry = carried_over("u1", legacy, MAX_DEVICES).to_entry()
    return user


def test_devices_carried_over_from_the_old_rule_are_known_to_the_alert() -> None:
    user = carried_user()
    assert user.state.carried == ["phone", "laptop"]
    # A carried device's first login here raises nothing.
    assert user.feed(login("s1", device_id="laptop")).alerts == ()
    assert user.state.carried == ["phone"]
    # A device new to a user who had carried ones alerts, counting them.
    (alert,) = user.feed(login("s2", 1, device_id="tablet")).alerts
    assert isinstance(alert.payload, SuspiciousLogin)
    assert (alert.payload.device_id, alert.payload.evidence["known_devices"]) == ("tablet", "2")
    assert user.feed(login("s3", 2, device_id="phone")).alerts == ()
    assert user.state.carried == []
    assert "carried" not in (user.entry or {})


def test_a_first_login_from_a_new_device_alerts_when_only_carried_ones_are_known() -> None:
    user = carried_user()
    new = login("s1", device_id="tablet")
    (alert,) = user.feed(new).alerts
    assert isinstance(alert.payload, SuspiciousLogin)
    assert alert.payload.evidence["known_devices"] == "2"
    # The row says what the log knew (no device before), as a replay of the log rebuilds it.
    assert not user.state.devices["tablet"].flagged
    # Replayed: the same alert again, nothing counted twice.
    assert user.feed(new).alerts == (alert,)
    assert user.state.devices["tablet"].login_count == 1


def test_the_rows_do_not_depend_on_the_carried_devices() -> None:
    history = [
        login("s1", 0, device_id="laptop"),
        login("s2", 1, device_id="tablet"),
        login("s3", 2, device_id="phone"),
        event("auth.logout", 3, session_id="s2"),
        login("s4", 4, device_id="watch"),
    ]
    carried, fresh = carried_user(), User()
    for item in history:
        carried.feed(item)
        fresh.feed(item)
    assert carried.state.devices == fresh.state.devices
    assert carried.state.sessions == fresh.state.sessions


def test_carried_devices_are_forgotten_first_when_the_list_is_full() -> None:
    user = carried_user()
    user.feed(login("s1", 0, device_id="a"))  # a, phone, laptop: MAX_DEVICES
    assert user.state.carried == ["phone", "laptop"]
    user.feed(login("s2", 1, device_id="b"))
    assert user.state.carried == ["phone"]
    user.feed(login("s3", 2, device_id="c"))
    assert (set(user.state.devices), user.state.carried) == ({"a", "b", "c"}, [])


def test_a_malformed_old_entry_carries_over_what_it_can() -> None:
    legacy = {"devices": [["ok", "id", False], [], "x", [7], ["ok", "again"], ["", "e"]]}
    assert carried_over("u1", legacy, MAX_DEVICES).carried == ["ok"]
    assert carried_over("u1", {"devices": "nope"}, MAX_DEVICES).carried == []
    assert carried_over("u1", None, MAX_DEVICES) == UserSessions("u1")
