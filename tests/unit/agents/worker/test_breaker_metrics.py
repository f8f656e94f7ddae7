"""The breakers' series as a scrape shows them."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest

from agents.worker.breaker_metrics import BreakerCollector
from streams.providers.circuit_breaker import BreakerPolicy, CircuitBreaker

# One failure opens it, one probe closes it.
ONE = BreakerPolicy(failure_threshold=1, min_requests=1, open_s=30.0, half_open_successes=1)
TWO = BreakerPolicy(failure_threshold=2, min_requests=1, open_s=30.0, half_open_successes=1)


class Clock:
    def __init__(self) -> None:
        self.now_s = 0.0

    def __call__(self) -> float:
        return self.now_s


def scrape(breakers: dict[str, CircuitBreaker]) -> str:
    registry = CollectorRegistry()
    registry.register(BreakerCollector(lambda: breakers))
    return generate_latest(registry).decode()


def test_an_open_breaker_is_1_and_counted_a_closed_one_is_0() -> None:
    clock = Clock()
    sendgrid = CircuitBreaker(TWO, clock)
    twilio = CircuitBreaker(TWO, clock)
    sendgrid.record_failure()
    sendgrid.record_failure()

    text = scrape({"sendgrid": sendgrid, "twilio": twilio})

    assert 'tributary_worker_circuit_breaker_open{provider="sendgrid"} 1.0' in text
    assert 'tributary_worker_circuit_breaker_open{provider="twilio"} 0.0' in text
    assert 'tributary_worker_circuit_breaker_opened_total{provider="sendgrid"} 1.0' in text
    assert 'tributary_worker_circuit_breaker_opened_total{provider="twilio"} 0.0' in text


def test_a_half_open_breaker_still_counts_as_open_until_its_probe_closes_it() -> None:
    clock = Clock()
    breaker = CircuitBreaker(ONE, clock)
    breaker.record_failure()
    clock.now_s = 31.0

    assert 'breaker_open{provider="fcm"} 1.0' in scrape({"fcm": breaker})
    assert breaker.allow()
    breaker.record_success()
    assert 'breaker_open{provider="fcm"} 0.0' in scrape({"fcm": breaker})


def test_before_the_first_send_there_are_no_providers_yet() -> None:
    text = scrape({})
    assert "# TYPE tributary_worker_circuit_breaker_open gauge" in text
    assert "provider=" not in text


def test_the_state_gauge_marks_the_current_state_and_counts_are_exported() -> None:
    clock = Clock()
    breaker = CircuitBreaker(TWO, clock)
    breaker.record_success()
    breaker.record_failure("HTTP 503")

    text = scrape({"twilio": breaker})
    assert 'breaker_state{provider="twilio",state="closed"} 1.0' in text
    assert 'breaker_state{provider="twilio",state="open"} 0.0' in text
    assert 'breaker_failures{provider="twilio"} 1.0' in text
    assert 'breaker_requests{provider="twilio"} 2.0' in text

    breaker.record_failure("HTTP 503")
    text = scrape({"twilio": breaker})
    assert 'breaker_state{provider="twilio",state="open"} 1.0' in text
    assert 'breaker_state{provider="twilio",state="closed"} 0.0' in text
    clock.now_s = 31.0
    assert 'breaker_state{provider="twilio",state="half-open"} 1.0' in scrape({"twilio": breaker})
