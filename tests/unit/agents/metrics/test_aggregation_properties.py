"""Properties of the aggregation stage: the analytics records do not depend on batching.

On a stream where no event is late (one partition in event-time order), every window closes
with all its events whatever the batches were, so the collector's batches and the aggregation's
batches may be cut anywhere: each window is published once, with the same key, the same
deterministic event id and the same figures. Only `ingested_at` (the publishing clock) differs.
"""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from agents.metrics.aggregation import MetricsAggregation
from agents.metrics.collector import MetricsCollector
from agents.metrics.windows import MetricsPartial, WindowAggregator
from agents.retry import Backoff
from schemas.analytics import ANALYTICS_RECORDS
from streams.kafka.wire import decode, encode
from streams.runtime import SourceRecord
from tests.unit.agents.metrics.test_windows_properties import CONFIG, KINDS, Partition
from tests.unit.agents.metrics.test_windows_properties import decode as decode_input
from tests.unit.agents.metrics_factories import no_scope
from tests.unit.fakes import FakeSink

END_WALL_S = 10.0**6
Published = list[tuple[str, str, dict[str, Any]]]


async def _no_sleep(_delay_s: float) -> None:
    return None


def cut(items: list[Any], cuts: set[int]) -> list[list[Any]]:
    bounds = [0, *sorted(c for c in cuts if 0 < c < len(items)), len(items)]
    return [items[a:b] for a, b in itertools.pairwise(bounds)]


def publish(records: list[SourceRecord], input_cuts: set[int], partial_cuts: set[int]) -> Published:
    """Collector batches cut at `input_cuts`, aggregation batches at `partial_cuts`; then the
    idle clock closes what is left. Returns (topic, key, record without ingested_at) in order."""
    sinks = {topic: FakeSink() for topic in ANALYTICS_RECORDS}
    wall = {"s": 0.0}
    aggregation: MetricsAggregation[SourceRecord] = MetricsAggregation(
        aggregator=WindowAggregator(CONFIG, {}, {}),
        outputs=sinks,
        encode=encode,
        describe=lambda record: record,
        scope=no_scope,
        backoff=Backoff(initial_s=0.001),
        wall_clock=lambda: wall["s"],
        sleep=_no_sleep,
    )
    collector = MetricsCollector(CONFIG, decode_input)
    partials = [p for batch in cut(records, input_cuts) for p in collector.partials(batch, 0.0)]
    as_records = [
        SourceRecord("partials", 0, n, None, p.model_dump_json().encode())
        for n, p in enumerate(partials)
    ]

    async def run() -> None:
        for batch in cut(as_records, partial_cuts):
            await aggregation.process(batch)
        wall["s"] = END_WALL_S
        if as_records:  # a timer's tick this late: the stream's clock closes what is left
            tick = MetricsPartial(wall_s=END_WALL_S).model_dump_json().encode()
            await aggregation.process([SourceRecord("partials", 0, len(as_records), None, tick)])

    asyncio.run(run())
    published: Published = []
    for topic, sink in sinks.items():
        model = ANALYTICS_RECORDS[topic][0]
        for record in sink.sent:
            assert record.key is not None
            envelope = decode(record.value, model).model_dump(exclude={"ingested_at"})
            published.append((topic, record.key.decode(), envelope))
    return published


in_time_order = st.lists(st.tuples(st.sampled_from(KINDS), st.integers(0, 900)), max_size=10).map(
    lambda events: sorted(events, key=lambda e: e[1])
)


@settings(max_examples=40)
@given(
    events=in_time_order,
    input_cuts=st.sets(st.integers(1, 9), max_size=4),
    partial_cuts=st.sets(st.integers(1, 9), max_size=4),
)
def test_any_batching_publishes_each_window_once_with_the_same_record(
    events: list[tuple[str, int]], input_cuts: set[int], partial_cuts: set[int]
) -> None:
    records = Partition(0, events).records
    expected = publish(records, set(), set())
    got = publish(records, input_cuts, partial_cuts)
    assert sorted(got, key=repr) == sorted(expected, key=repr)
    keys = [(topic, key) for topic, key, _ in got]
    assert len(keys) == len(set(keys))
    ids = [envelope["event_id"] for _, _, envelope in got]
    assert len(ids) == len(set(ids))
