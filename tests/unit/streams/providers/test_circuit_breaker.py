"""The breaker's state machine, on a fake clock."""

from __future__ import annotations

import pytest

from streams.providers.circuit_breaker import BreakerState, CircuitBreaker
from tests.unit.fakes import FakeClock


def opened(clock: FakeClock, threshold: int = 3, open_s: float = 10.0) -> CircuitBreaker:
    breaker = CircuitBreaker(threshold, open_s, clock)
    for _ in range(threshold):
        assert breaker.allow()
        breaker.record_failure()
    return breaker


def test_threshold_consecutive_failures_open_it_and_a_success_resets_the_count() -> None:
    breaker = CircuitBreaker(3, 10.0, FakeClock(1000.0))
    breaker.record_failure()
    breaker.record_failure()
    breaker.record_success()
    breaker.record_failure()
    breaker.record_failure()
    assert breaker.state is BreakerState.CLOSED
    assert breaker.allow()
    breaker.record_failure()
    assert breaker.state is BreakerState.OPEN
    assert not breaker.allow()
    assert breaker.times_opened == 1


def test_open_refuses_calls_until_the_duration_has_passed() -> None:
    clock = FakeClock(1000.0)
    breaker = opened(clock)
    clock.now_s += 9.9
    assert not breaker.allow()
    assert breaker.open_for_s() == pytest.approx(0.1)
    clock.now_s += 0.1
    assert breaker.state is BreakerState.HALF_OPEN
    assert breaker.open_for_s() == 0.0


def test_half_open_lets_one_probe_through_and_its_success_closes_the_circuit() -> None:
    clock = FakeClock(1000.0)
    breaker = opened(clock)
    clock.now_s += 10.0
    assert breaker.allow()
    assert not breaker.allow()  # one probe at a time
    breaker.record_success()
    assert breaker.state is BreakerState.CLOSED
    assert breaker.allow()


def test_a_failed_probe_opens_it_for_another_full_duration() -> None:
    clock = FakeClock(1000.0)
    breaker = opened(clock)
    clock.now_s += 10.0
    assert breaker.allow()
    breaker.record_failure()
    assert breaker.state is BreakerState.OPEN
    assert breaker.open_for_s() == 10.0
    assert breaker.times_opened == 2


def test_a_probe_ended_without_verdict_hands_the_probe_back() -> None:
    clock = FakeClock(1000.0)
    breaker = opened(clock)
    clock.now_s += 10.0
    assert breaker.allow()
    breaker.release()
    assert breaker.allow()


def test_late_results_of_calls_started_before_it_opened_change_nothing() -> None:
    clock = FakeClock(1000.0)
    breaker = opened(clock)
    breaker.record_success()
    breaker.record_failure()
    assert breaker.state is BreakerState.OPEN
    assert breaker.open_for_s() == 10.0
    assert breaker.times_opened == 1


def test_nonsense_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="failure_threshold"):
        CircuitBreaker(0, 1.0)
    with pytest.raises(ValueError, match="open_s"):
        CircuitBreaker(1, 0.0)
