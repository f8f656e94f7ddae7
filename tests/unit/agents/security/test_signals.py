"""The security rules without Kafka: thresholds and their edges, per user and per IP."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from agents.security.signals import (
    REASON_IP_BURST,
    REASON_USER_BURST,
    Decisions,
    alert_id,
    on_ip_failure,
    on_user_event,
)
from schemas.auth import AuthEvent, SuspiciousLogin
from streams.settings import SecuritySettings

T0 = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
CONFIG = SecuritySettings(
    user_failures=3, user_window_s=60, ip_failures=4, ip_window_s=120, block_s=300
)


def auth_event(
    event_type: str,
    user_id: str = "u1",
    *,
    at_s: float = 0,
    ip: str = "203.0.113.7",
    device_id: str | None = None,
    event_id: uuid.UUID | None = None,
) -> AuthEvent:
    event_id = event_id or uuid.uuid4()
    occurred_at = T0 + timedelta(seconds=at_s)
    payload: dict[str, Any] = {"user_id": user_id, "device_id": device_id}
    if event_type.startswith("auth.login-"):
        payload["ip"] = ip
    return AuthEvent.model_validate(
        {
            "event_id": event_id,
            "event_type": event_type,
            "occurred_at": occurred_at,
            "ingested_at": occurred_at,
            "source": "test",
            "correlation_id": f"c-{event_id}",
            "payload": payload,
        }
    )


def failed(user_id: str = "u1", **kwargs: Any) -> AuthEvent:
    return auth_event("auth.login-failed", user_id, **kwargs)


def succeeded(user_id: str = "u1", **kwargs: Any) -> AuthEvent:
    return auth_event("auth.login-succeeded", user_id, **kwargs)


class Users:
    """A one-key table, folded like the agent folds it."""

    def __init__(self) -> None:
        self.entry: dict[str, Any] | None = None

    def feed(self, event: AuthEvent) -> Decisions:
        decisions = on_user_event(event, self.entry, CONFIG)
        if decisions.entry is not None:
            self.entry = decisions.entry
        return decisions


class Ips(Users):
    def feed(self, event: AuthEvent) -> Decisions:
        decisions = on_ip_failure(event, self.entry, CONFIG)
        if decisions.entry is not None:
            self.entry = decisions.entry
        return decisions


def payload(alert: AuthEvent) -> SuspiciousLogin:
    assert alert.event_type == "auth.suspicious-login"
    assert isinstance(alert.payload, SuspiciousLogin)
    return alert.payload


def test_user_threshold_minus_one_is_no_burst_and_the_threshold_is() -> None:
    users = Users()
    assert users.feed(failed(at_s=0)).alerts == ()
    assert users.feed(failed(at_s=10)).alerts == ()
    third = failed(at_s=20)
    decisions = users.feed(third)
    (alert,) = decisions.alerts
    body = payload(alert)
    assert (body.user_id, body.reason, body.ip) == ("u1", REASON_USER_BURST, "203.0.113.7")
    assert body.evidence["failed_attempts"] == "3"
    assert body.evidence["window_s"] == "60"
    assert body.evidence["threshold"] == "3"
    assert len(body.related_event_ids) == 3
    assert alert.event_id == alert_id(REASON_USER_BURST, "u1", third.event_id)
    assert alert.causation_id == str(third.event_id)
    (block,) = decisions.blocks
    assert (block.kind, block.id, block.event_id) == ("user", "u1", alert.event_id)
    assert block.until == third.occurred_at + timedelta(seconds=300)


def test_failures_past_the_threshold_in_the_same_burst_raise_no_new_alert() -> None:
    users = Users()
    for n in range(3):
        users.feed(failed(at_s=n))
    assert users.feed(failed(at_s=5)).alerts == ()
    assert users.feed(failed(at_s=59)).alerts == ()
    assert users.feed(failed(at_s=61)).alerts == ()
    # A whole window after the alert (at 2 s), a burst in progress is reported again.
    assert len(users.feed(failed(at_s=62)).alerts) == 1


def test_failures_further_apart_than_the_window_are_no_burst() -> None:
    users = Users()
    users.feed(failed(at_s=0))
    users.feed(failed(at_s=30))
    # Exactly one window after the first: strictly less than W apart is required.
    assert users.feed(failed(at_s=60)).alerts == ()
    assert len(users.feed(failed(at_s=61)).alerts) == 1


def test_every_failure_is_forwarded_to_be_counted_by_ip() -> None:
    users = Users()
    assert users.feed(failed()).forward_by_ip
    assert not users.feed(succeeded(device_id="d1")).forward_by_ip


def test_other_users_failures_do_not_count() -> None:
    alice, bob = Users(), Users()
    alice.feed(failed("alice", at_s=0))
    alice.feed(failed("alice", at_s=1))
    assert bob.feed(failed("bob", at_s=2)).alerts == ()


def test_a_replayed_failure_is_not_counted_twice() -> None:
    users = Users()
    first = failed(at_s=0)
    users.feed(first)
    replay = users.feed(first)
    assert replay.entry is None
    assert replay.alerts == ()
    assert users.feed(failed(at_s=1)).alerts == ()


def test_a_replayed_trigger_repeats_its_alert_under_the_same_id() -> None:
    users = Users()
    users.feed(failed(at_s=0))
    users.feed(failed(at_s=1))
    trigger = failed(at_s=2)
    (alert,) = users.feed(trigger).alerts
    (again,) = users.feed(trigger).alerts
    assert again == alert


def test_ip_threshold_counts_failures_of_different_users() -> None:
    ips = Ips()
    for n, user in enumerate(["a", "b", "c"]):
        assert ips.feed(failed(user, at_s=n, ip="198.51.100.9")).alerts == ()
    decisions = ips.feed(failed("d", at_s=100, ip="198.51.100.9"))
    (alert,) = decisions.alerts
    body = payload(alert)
    assert (body.user_id, body.reason, body.ip) == ("d", REASON_IP_BURST, "198.51.100.9")
    assert body.evidence["distinct_users"] == "4"
    assert body.evidence["window_s"] == "120"
    (block,) = decisions.blocks
    assert (block.kind, block.id) == ("ip", "198.51.100.9")
    assert not decisions.forward_by_ip
    assert ips.feed(failed("e", at_s=101, ip="198.51.100.9")).alerts == ()


def test_ip_failures_outside_the_window_are_no_burst() -> None:
    ips = Ips()
    for at_s in (0, 50, 100):
        ips.feed(failed("a", at_s=at_s))
    assert ips.feed(failed("a", at_s=120)).alerts == ()


def test_a_successful_login_is_left_to_the_sessions_fold() -> None:
    """Devices are known from the sessions table (`agents.sessions`), not from this entry."""
    users = Users()
    users.feed(succeeded(device_id="laptop"))
    assert users.feed(succeeded(device_id="phone", at_s=1)) == Decisions()
    assert users.entry is None


def test_our_own_alerts_and_other_event_types_are_ignored() -> None:
    users = Users()
    for _ in range(3):
        users.feed(failed())
    assert users.feed(auth_event("auth.logout")) == Decisions()


def test_a_burst_bigger_than_the_contract_allows_names_its_latest_failures() -> None:
    config = CONFIG.model_copy(update={"user_failures": 1200, "user_window_s": 3600})
    entry: dict[str, Any] | None = None
    events = [failed(at_s=n) for n in range(1200)]
    for event in events:
        decisions = on_user_event(event, entry, config)
        entry = decisions.entry or entry
    (alert,) = decisions.alerts
    assert payload(alert).related_event_ids == [e.event_id for e in events[-1000:]]


def test_ip_failures_arriving_out_of_order_are_counted_by_event_time() -> None:
    # The per-IP stream merges every partition of auth.events: arrival order is not time order.
    ips = Ips()
    for at_s in (0, 1, 30):
        assert ips.feed(failed("a", at_s=at_s)).alerts == ()
    (alert,) = ips.feed(failed("b", at_s=10)).alerts
    assert payload(alert).evidence["failed_attempts"] == "4"


def test_a_late_failure_outside_the_window_of_the_newest_is_no_burst() -> None:
    ips = Ips()
    for at_s in (200, 201, 202):
        ips.feed(failed("a", at_s=at_s))
    assert ips.feed(failed("b", at_s=50)).alerts == ()
