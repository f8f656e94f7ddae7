"""The providers' circuit breakers as Prometheus series, read when scraped (no cost per send).

- `tributary_worker_circuit_breaker_open{provider}`: 1 while the breaker refuses calls (open,
  or half-open waiting on its probe), else 0;
- `tributary_worker_circuit_breaker_opened_total{provider}`: times it opened since the start;
- `tributary_worker_circuit_breaker_state{provider,state}`: 1 for the state it is in (closed,
  open, half-open), 0 for the others (the usual shape of an enum in Prometheus);
- `tributary_worker_circuit_breaker_failures{provider}`: consecutive failures now;
- `tributary_worker_circuit_breaker_requests{provider}`: sends that ended in its window.

A provider appears once the dispatcher has built its senders (at its first send).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from streams.providers.circuit_breaker import BreakerState, CircuitBreaker

PREFIX = "tributary_worker_circuit_breaker"


class BreakerCollector(Collector):
    def __init__(self, breakers: Callable[[], Mapping[str, CircuitBreaker]]) -> None:
        self._breakers = breakers

    def collect(self) -> Iterator[Metric]:
        is_open = GaugeMetricFamily(
            f"{PREFIX}_open",
            "1 while a provider's circuit breaker refuses calls (open or half-open), else 0",
            labels=["provider"],
        )
        opened = CounterMetricFamily(
            f"{PREFIX}_opened",
            "Times a provider's circuit breaker opened",
            labels=["provider"],
        )
        state = GaugeMetricFamily(
            f"{PREFIX}_state",
            "1 for the state a provider's circuit breaker is in, 0 for the others",
            labels=["provider", "state"],
        )
        failures = GaugeMetricFamily(
            f"{PREFIX}_failures",
            "Consecutive failures a provider's circuit breaker counts now",
            labels=["provider"],
        )
        requests = GaugeMetricFamily(
            f"{PREFIX}_requests",
            "Sends through a provider that ended in its circuit breaker's window",
            labels=["provider"],
        )
        for provider, breaker in sorted(self._breakers().items()):
            snapshot = breaker.snapshot()
            refusing = snapshot.state is not BreakerState.CLOSED
            is_open.add_metric([provider], 1.0 if refusing else 0.0)
            opened.add_metric([provider], float(snapshot.times_opened))
            for each in BreakerState:
                state.add_metric([provider, each.value], 1.0 if each is snapshot.state else 0.0)
            failures.add_metric([provider], float(snapshot.consecutive_failures))
            requests.add_metric([provider], float(snapshot.requests_in_window))
        yield from (is_open, opened, state, failures, requests)
