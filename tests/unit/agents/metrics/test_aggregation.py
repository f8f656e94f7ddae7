"""Closed windows -> Avro records on the analytics topics: once, keyed, deterministic."""

from __future__ import annotations

from typing import Any

from agents.metrics.aggregation import MetricsAggregation
from agents.metrics.windows import MetricsPartial, WindowAggregator
from agents.retry import Backoff
from schemas.analytics import EventsWindowRecord, OrdersWindowRecord
from streams.kafka.wire import decode, encode
from streams.runtime import OutgoingRecord, SourceRecord
from tests.unit.agents.metrics_factories import Inputs, config, event, no_scope, order
from tests.unit.fakes import FakeSink

TOPICS = ("analytics.events", "analytics.orders", "analytics.auth", "analytics.delivery")


def setup(
    sinks: dict[str, FakeSink] | None = None, wall_s: float = 0.0
) -> tuple[MetricsAggregation[SourceRecord], dict[str, FakeSink], dict[str, Any]]:
    sinks = sinks or {topic: FakeSink() for topic in TOPICS}
    clock: dict[str, Any] = {}
    aggregation: MetricsAggregation[SourceRecord] = MetricsAggregation(
        aggregator=WindowAggregator(config(), {}, clock),
        outputs=sinks,
        encode=encode,
        describe=lambda record: record,
        scope=no_scope,
        backoff=Backoff(initial_s=0.001),
        wall_clock=lambda: wall_s,
        sleep=_no_sleep,
    )
    return aggregation, sinks, clock


async def _no_sleep(_delay_s: float) -> None:
    return None


def as_records(partials: list[MetricsPartial]) -> list[SourceRecord]:
    return [
        SourceRecord("partials", 0, n, None, p.model_dump_json().encode())
        for n, p in enumerate(partials)
    ]


def keys(sent: list[OutgoingRecord]) -> list[str]:
    return [record.key.decode() for record in sent if record.key is not None]


async def test_closed_windows_are_published_once_as_avro_keyed_by_window_and_dimension() -> None:
    aggregation, sinks, _ = setup()
    inputs = Inputs()
    window = aggregation.aggregator.config
    await aggregation.process(
        as_records(
            inputs.partials(window, [order("order.paid", 3, "EUR", 900), event("user.created", 4)])
        )
    )
    assert all(not sink.sent for sink in sinks.values())
    late = inputs.partials(
        window, [order("order.paid", 9, "EUR", 100), order("order.created", 100)]
    )
    await aggregation.process(as_records(late))
    orders = [decode(r.value, OrdersWindowRecord) for r in sinks["analytics.orders"].sent]
    [first] = [r for r in orders if r.payload.kind == "tumbling"]
    assert first.payload.key == "tumbling:60:2026-11-21T12:00:00Z:EUR"
    assert (first.payload.orders_paid, first.payload.revenue_minor) == (2, 1000)
    assert (first.payload.average_order_value_minor, first.source) == (500, "agent:metrics")
    assert first.occurred_at == first.payload.window_end
    assert keys(sinks["analytics.orders"].sent) == [r.payload.key for r in orders]
    assert first.payload.key in keys(sinks["analytics.orders"].sent)
    families = [decode(r.value, EventsWindowRecord).payload for r in sinks["analytics.events"].sent]
    assert {(w.family, w.events) for w in families if w.kind == "tumbling"} == {
        ("orders", 2),
        ("users", 1),
    }
    assert sinks["analytics.auth"].sent == []

    before = {topic: len(sink.sent) for topic, sink in sinks.items()}
    await aggregation.process(as_records(late))  # the same partials again: nothing new
    assert {topic: len(sink.sent) for topic, sink in sinks.items()} == before
    assert aggregation.stats.windows_published == sum(before.values())


async def test_a_window_published_again_after_a_crash_is_the_same_record() -> None:
    """Publishing then crashing before recording it: the replay's records are identical."""
    inputs = Inputs()
    window = config()
    partials = as_records(
        inputs.partials(window, [event("auth.logout", 1), event("auth.logout", 200)])
    )
    first, first_sinks, _ = setup(wall_s=1.0)
    await first.process(partials)
    replay, replay_sinks, _ = setup(wall_s=2.0)
    await replay.process(partials)
    for topic in TOPICS:
        assert [r.key for r in first_sinks[topic].sent] == [r.key for r in replay_sinks[topic].sent]
    ids = [
        [decode(r.value, EventsWindowRecord).event_id for r in sinks["analytics.events"].sent]
        for sinks in (first_sinks, replay_sinks)
    ]
    assert ids[0] == ids[1]
    assert len(ids[0]) == 3
    assert keys(first_sinks["analytics.auth"].sent) == keys(replay_sinks["analytics.auth"].sent)


async def test_publishing_is_retried_and_the_windows_recorded_only_after_it() -> None:
    sinks: dict[str, FakeSink] = {topic: FakeSink() for topic in TOPICS}
    sinks["analytics.events"] = FakeSink(failures=2)
    aggregation, _, clock = setup(sinks)
    inputs = Inputs()
    window = aggregation.aggregator.config
    await aggregation.process(
        as_records(inputs.partials(window, [event("user.created", 1), event("user.created", 200)]))
    )
    assert aggregation.stats.retries == 2
    assert len(sinks["analytics.events"].sent) >= 1
    assert clock["clock"]["closed_ms"] > 0


async def test_something_that_is_not_a_partial_is_counted_and_skipped() -> None:
    aggregation, _, _ = setup()
    await aggregation.process([SourceRecord("partials", 0, 0, None, b"{not json")])
    assert (aggregation.stats.invalid_partials, aggregation.stats.partials) == (1, 0)
