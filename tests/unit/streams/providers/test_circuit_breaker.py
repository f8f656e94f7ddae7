"""The breaker's state machine, on a fake clock: thresholds, minimum requests, half-open, reopen."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from streams.providers.circuit_breaker import (
    BreakerPolicy,
    BreakerState,
    CircuitBreaker,
    RollingCount,
)
from streams.settings import DispatchSettings
from tests.unit.fakes import FakeClock

EPOCH = datetime(2026, 12, 5, tzinfo=UTC)
# The service's numbers: 5 consecutive failures once 10 requests were seen, 60 s open, 2 probes.
POLICY = BreakerPolicy(
    failure_threshold=5, min_requests=10, open_s=60.0, half_open_successes=2, window_s=60.0
)


def breaker_on(clock: FakeClock, policy: BreakerPolicy = POLICY) -> CircuitBreaker:
    return CircuitBreaker(policy, clock, lambda: EPOCH + timedelta(seconds=clock()))


def opened(clock: FakeClock) -> CircuitBreaker:
    """Open after 5 successes and 5 failures (10 requests, 5 consecutive failures)."""
    breaker = breaker_on(clock)
    for _ in range(5):
        assert breaker.allow()
        breaker.record_success()
    for n in range(5):
        assert breaker.allow()
        breaker.record_failure(f"HTTP 503: down {n}")
    assert breaker.state is BreakerState.OPEN
    return breaker


def test_the_settings_default_to_the_services_numbers() -> None:
    assert BreakerPolicy.of(DispatchSettings()) == POLICY


def test_five_consecutive_failures_open_it_once_ten_requests_were_seen() -> None:
    clock = FakeClock(1000.0)
    breaker = breaker_on(clock)
    for _ in range(5):
        breaker.record_success()
    for _ in range(4):
        breaker.record_failure("HTTP 503")
    assert breaker.state is BreakerState.CLOSED
    breaker.record_failure("HTTP 503")
    assert breaker.state is BreakerState.OPEN
    assert not breaker.allow()
    assert breaker.times_opened == 1


def test_failures_below_the_minimum_requests_keep_it_closed_until_the_tenth() -> None:
    clock = FakeClock(1000.0)
    breaker = breaker_on(clock)
    for _ in range(9):
        breaker.record_failure("HTTP 503")
    assert breaker.state is BreakerState.CLOSED
    assert breaker.snapshot().consecutive_failures == 9
    breaker.record_failure("HTTP 503")
    assert breaker.state is BreakerState.OPEN


def test_a_success_resets_the_consecutive_count() -> None:
    breaker = breaker_on(FakeClock(1000.0))
    for _ in range(10):
        breaker.record_success()
    for _ in range(4):
        breaker.record_failure("x")
    breaker.record_success()
    for _ in range(4):
        breaker.record_failure("x")
    assert breaker.state is BreakerState.CLOSED
    breaker.record_failure("x")
    assert breaker.state is BreakerState.OPEN


def test_requests_older_than_the_window_do_not_count_towards_the_minimum() -> None:
    clock = FakeClock(1000.0)
    breaker = breaker_on(clock)
    for _ in range(5):
        breaker.record_success()
    clock.now_s += 61.0
    for _ in range(5):
        breaker.record_failure("x")
    assert breaker.snapshot().requests_in_window == 5
    assert breaker.state is BreakerState.CLOSED


def test_open_refuses_calls_for_sixty_seconds_then_is_half_open() -> None:
    clock = FakeClock(1000.0)
    breaker = opened(clock)
    clock.now_s += 59.9
    assert not breaker.allow()
    assert breaker.open_for_s() == pytest.approx(0.1)
    clock.now_s += 0.1
    assert breaker.state is BreakerState.HALF_OPEN
    assert breaker.open_for_s() == 0.0


def test_half_open_needs_two_successful_probes_one_at_a_time_to_close() -> None:
    clock = FakeClock(1000.0)
    breaker = opened(clock)
    clock.now_s += 60.0
    assert breaker.allow()
    assert not breaker.allow()  # one probe at a time
    breaker.record_success()
    assert breaker.state is BreakerState.HALF_OPEN
    assert breaker.allow()
    breaker.record_success()
    assert breaker.state is BreakerState.CLOSED
    assert breaker.allow()
    assert breaker.snapshot().consecutive_failures == 0


def test_a_failed_probe_reopens_it_for_another_full_duration() -> None:
    clock = FakeClock(1000.0)
    breaker = opened(clock)
    clock.now_s += 60.0
    assert breaker.allow()
    breaker.record_success()
    assert breaker.allow()
    breaker.record_failure("HTTP 503: still down")
    assert breaker.state is BreakerState.OPEN
    assert breaker.open_for_s() == 60.0
    assert breaker.times_opened == 2
    # The success before the failure does not carry over to the next half-open period.
    clock.now_s += 60.0
    assert breaker.allow()
    breaker.record_success()
    assert breaker.state is BreakerState.HALF_OPEN


def test_a_probe_ended_without_verdict_hands_the_probe_back() -> None:
    clock = FakeClock(1000.0)
    breaker = opened(clock)
    clock.now_s += 60.0
    assert breaker.allow()
    breaker.release()
    assert breaker.allow()


def test_late_results_of_calls_started_before_it_opened_change_nothing() -> None:
    clock = FakeClock(1000.0)
    breaker = opened(clock)
    breaker.record_success()
    breaker.record_failure("late")
    assert breaker.state is BreakerState.OPEN
    assert breaker.open_for_s() == 60.0
    assert breaker.times_opened == 1


def test_reset_closes_an_open_breaker_at_once() -> None:
    clock = FakeClock(1000.0)
    breaker = opened(clock)
    breaker.reset()
    assert breaker.state is BreakerState.CLOSED
    assert breaker.allow()
    snapshot = breaker.snapshot()
    assert snapshot.consecutive_failures == 0
    assert snapshot.opened_at is None
    assert snapshot.times_opened == 1


def test_the_snapshot_says_state_failures_last_error_opened_at_and_requests() -> None:
    clock = FakeClock(1000.0)
    breaker = opened(clock)
    clock.now_s += 3.0
    snapshot = breaker.snapshot()
    assert snapshot.state is BreakerState.OPEN
    assert snapshot.consecutive_failures == 5
    assert snapshot.requests_in_window == 10
    assert snapshot.last_error == "HTTP 503: down 4"
    assert snapshot.opened_at == EPOCH + timedelta(seconds=1000.0)
    assert snapshot.last_error_at == EPOCH + timedelta(seconds=1000.0)


def test_the_rolling_count_forgets_whole_buckets_only() -> None:
    count = RollingCount(10.0, buckets=10)
    count.add(0.0)
    count.add(0.5)
    count.add(5.0)
    assert count.total(9.9) == 3
    assert count.total(10.0) == 1
    assert count.total(15.0) == 0


def test_nonsense_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="failure_threshold"):
        BreakerPolicy(failure_threshold=0)
    with pytest.raises(ValueError, match="min_requests"):
        BreakerPolicy(min_requests=0)
    with pytest.raises(ValueError, match="open_s"):
        BreakerPolicy(open_s=0.0)
    with pytest.raises(ValueError, match="window_s"):
        BreakerPolicy(window_s=0.0)
