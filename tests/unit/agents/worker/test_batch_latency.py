"""`BatchLatency` exposes what `prometheus_client.Histogram` would for the same observations."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.exposition import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from agents.worker.batch_latency import BatchLatency

BUCKETS_S = (0.001, 0.01, 0.1, 1.0, 10.0)
# (agent, seconds, events): on a bound, between bounds, past the last one, zero.
BATCHES = [
    ("route", 0.01, 3),
    ("route", 0.05, 2),
    ("track", 0.0, 1),
    ("track", 1.0, 500),
    ("route", 42.0, 7),
    ("track", 0.0005, 4),
]


def exposition_of_batch_latency() -> bytes:
    registry = CollectorRegistry()
    latency = BatchLatency("w_latency_seconds", "Latency", "agent", BUCKETS_S, registry)
    for agent, seconds, events in BATCHES:
        latency.observe(agent, seconds, events)
    return generate_latest(registry)


def exposition_of_a_prometheus_histogram() -> bytes:
    registry = CollectorRegistry()
    latency = Histogram(
        "w_latency_seconds", "Latency", ["agent"], buckets=BUCKETS_S, registry=registry
    )
    for agent, seconds, events in BATCHES:
        for _ in range(events):
            latency.labels(agent=agent).observe(seconds)
    return generate_latest(registry)


def series(exposition: bytes) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """The samples by name and labels (the client's own histogram adds `_created` ones)."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(exposition.decode())
        for sample in family.samples
        if not sample.name.endswith("_created")
    }


def test_a_batch_of_n_events_is_n_observations_of_its_latency() -> None:
    ours = series(exposition_of_batch_latency())
    reference = series(exposition_of_a_prometheus_histogram())
    assert ours.keys() == reference.keys()
    for key, value in reference.items():  # sums differ in the last bits: n*x against x+...+x
        assert ours[key] == pytest.approx(value, rel=1e-12), key


def test_the_series_is_declared_as_a_histogram_even_before_any_batch() -> None:
    registry = CollectorRegistry()
    BatchLatency("w_latency_seconds", "Latency", "agent", BUCKETS_S, registry)
    text = generate_latest(registry).decode()
    assert "# TYPE w_latency_seconds histogram" in text
    assert "w_latency_seconds_bucket" not in text
