"""Properties of the security folds: failure windows. (Known devices are the sessions fold's:
see `tests/unit/agents/sessions/test_state_properties.py`.)

What the rules promise (see `agents.security.signals`):
- the failure window keeps the newest N failures by event time, whatever the arrival order, and
  a burst among them is always alerted, in any arrival order (the per-IP stream merges every
  partition of `auth.events`, so its order is arbitrary);
- an alert is a real burst (N failures less than W apart), and a key alerts again only once the
  window since its last alert has passed;
- reading events again changes no entry, and repeats only alerts already raised, under the same
  ids. Redelivery is a suffix of the partition read again after a crash, against a table that may
  already hold later events: for a history h and 0 <= k <= m <= len(h), the table restored at
  h[:m] then fed h[k:].

Which alerts a history raises otherwise depends on arrival order, by design (an alert is decided
when its last failure arrives), so no property compares alerts across orders.
"""

from __future__ import annotations

import itertools
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from agents.security.signals import (
    Decisions,
    Failure,
    FailureWindow,
    count_failure,
    on_ip_failure,
    on_user_event,
)
from schemas.auth import AuthEvent
from streams.settings import SecuritySettings

T0 = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
THRESHOLD = 3
WINDOW_MS = 10_000
CONFIG = SecuritySettings(
    user_failures=THRESHOLD,
    user_window_s=WINDOW_MS // 1000,
    ip_failures=THRESHOLD,
    ip_window_s=WINDOW_MS // 1000,
    block_s=30,
    max_devices=50,
)

# Failures of one key over 40 s against a 10 s window: bursts, near misses and quiet spells,
# with equal event times now and then (milliseconds collide too).
failure_lists = st.lists(
    st.builds(
        Failure,
        at_ms=st.integers(0, 40).map(lambda s: s * 1000),
        event_id=st.uuids(version=4).map(str),
        user_id=st.sampled_from(("u1", "u2")),
    ),
    min_size=1,
    max_size=12,
    unique_by=lambda f: f.event_id,
)


def count_all(failures: list[Failure]) -> tuple[FailureWindow, list[tuple[Failure, ...]]]:
    window = FailureWindow()
    bursts: list[tuple[Failure, ...]] = []
    for failure in failures:
        count = count_failure(window, failure, THRESHOLD, WINDOW_MS)
        if count.burst:
            bursts.append(count.in_window)
    return window, bursts


def newest(failures: list[Failure]) -> list[int]:
    return sorted(f.at_ms for f in failures)[-THRESHOLD:]


@settings(max_examples=300)
@given(data=st.data(), failures=failure_lists)
def test_the_window_keeps_the_newest_failures_in_any_order(
    data: st.DataObject, failures: list[Failure]
) -> None:
    shuffled = data.draw(st.permutations(failures))
    window, _ = count_all(shuffled)
    # By event time; which of two equal times is kept may depend on the order.
    assert [f.at_ms for f in window.failures] == newest(failures)


@settings(max_examples=300)
@given(data=st.data(), failures=failure_lists)
def test_a_burst_among_the_newest_failures_is_alerted_in_any_order(
    data: st.DataObject, failures: list[Failure]
) -> None:
    shuffled = data.draw(st.permutations(failures))
    window, bursts = count_all(shuffled)
    times = newest(failures)
    is_burst = len(times) == THRESHOLD and times[-1] - times[0] < WINDOW_MS
    if is_burst:
        assert bursts
        assert window.alerted_ms is not None


@settings(max_examples=300)
@given(data=st.data(), failures=failure_lists)
def test_alerts_are_real_bursts_a_window_apart(
    data: st.DataObject, failures: list[Failure]
) -> None:
    _, bursts = count_all(data.draw(st.permutations(failures)))
    ids = {f.event_id for f in failures}
    for burst in bursts:
        assert len(burst) == THRESHOLD
        assert {f.event_id for f in burst} <= ids
        assert burst[-1].at_ms - burst[0].at_ms < WINDOW_MS
    ends = [burst[-1].at_ms for burst in bursts]
    assert all(later - earlier >= WINDOW_MS for earlier, later in itertools.pairwise(ends))


def _auth_event(event_type: str, at_s: int, user_id: str, ip: str, device_id: str | None) -> Any:
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
            "payload": {"user_id": user_id, "ip": ip, "device_id": device_id},
        }
    )


auth_events = st.builds(
    _auth_event,
    st.sampled_from(("auth.login-failed", "auth.login-failed", "auth.login-succeeded")),
    st.integers(0, 40),
    st.sampled_from(("u1", "u2")),
    st.sampled_from(("203.0.113.7", "198.51.100.1")),
    st.none() | st.sampled_from(("d1", "d2", "d3", "d4")),
)


@st.composite
def replays(draw: st.DrawFn) -> tuple[list[AuthEvent], int, int]:
    history = draw(st.lists(auth_events, min_size=1, max_size=12))
    restored = draw(st.integers(0, len(history)))
    resumed = draw(st.integers(0, restored))
    return history, restored, resumed


Table = dict[str, dict[str, Any]]


def run(
    table: Table, events: list[AuthEvent], config: SecuritySettings = CONFIG
) -> list[uuid.UUID]:
    """Feeds `events` to both rules as the two agents do (by user; failures again by IP) and
    returns the ids of the alerts raised, in order; `table` is updated in place."""
    alerts: list[uuid.UUID] = []

    def apply(key: str, decisions: Decisions) -> None:
        if decisions.entry is not None:
            table[key] = decisions.entry
        alerts.extend(alert.event_id for alert in decisions.alerts)

    for event in events:
        user_key = f"user:{event.payload.user_id}"
        decisions = on_user_event(event, table.get(user_key), config)
        apply(user_key, decisions)
        if decisions.forward_by_ip:
            ip_key = f"ip:{event.payload.ip}"
            apply(ip_key, on_ip_failure(event, table.get(ip_key), config))
    return alerts


@settings(max_examples=200)
@given(replay=replays())
def test_reading_a_suffix_again_changes_no_entry_and_raises_no_new_alert(
    replay: tuple[list[AuthEvent], int, int],
) -> None:
    history, restored, resumed = replay
    once: Table = {}
    raised = run(once, history)
    table: Table = {}
    run(table, history[:restored])
    repeated = run(table, history[resumed:])
    assert table == once
    assert set(repeated) <= set(raised)
    assert len(raised) == len(set(raised))
