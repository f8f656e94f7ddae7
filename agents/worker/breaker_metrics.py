"""The providers' circuit breakers as Prometheus series, read when scraped (no cost per send).

- `tributary_worker_circuit_breaker_open{provider}`: 1 while the breaker refuses calls (open,
  or half-open waiting on its probe), else 0;
- `tributary_worker_circuit_breaker_opened_total{provider}`: times it opened since the start.

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
        for provider, breaker in sorted(self._breakers().items()):
            refusing = breaker.state is not BreakerState.CLOSED
            is_open.add_metric([provider], 1.0 if refusing else 0.0)
            opened.add_metric([provider], float(breaker.times_opened))
        yield is_open
        yield opened
