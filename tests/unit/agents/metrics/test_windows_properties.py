"""Properties of the metric windows: how records are batched into partials must not matter.

Records of two input partitions go through the collector (one partial per partition and batch)
and the aggregator. Kafka keeps each partition in offset order but interleaves partitions and
cuts batches anywhere, so the generated runs interleave the partitions arbitrarily and cut
batches at arbitrary points.

The design (`agents.metrics.windows`) makes the results a function of the events only while no
window closes in between: once a window has closed, an event late for it is dropped and counted,
so what a window holds then depends on arrival order. The properties say exactly that:
- with every partial folded before any close, any batching, any interleaving of the partials of
  different partitions and any re-sent partial give the same window results;
- with closes anywhere in between, every event is in exactly one tumbling result or counted as
  late, and no window is published twice.
"""

from __future__ import annotations

import functools
import itertools
from typing import Any

from hypothesis import example, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from agents.metrics.collector import MetricsCollector
from agents.metrics.windows import CLOCK_KEY, MetricsPartial, WindowAggregator, WindowConfig
from schemas.analytics import EventsWindow, WindowResult
from streams.errors import PoisonError
from streams.runtime import SourceRecord
from tests.unit.agents.metrics_factories import T0_MS, config, event, order, status

CONFIG = config()  # tumbling 60 s, hopping 300 s by 60 s, 30 s grace, idle after 60 s
TOPIC = "orders"
# A tick this late: far enough past every event time for the idle rule to close every window.
END_WALL_S = 10.0**6
KINDS = ("order.created", "order.paid", "auth.login-failed", "delivered", "user.created")


@functools.cache
def _event(kind: str, at_s: int) -> BaseModel:
    """Built once per (kind, second): the collector reads only type, time and payload."""
    if kind.startswith("order."):
        return order(kind, at_s, currency="EUR" if at_s % 2 else "USD", total_minor=100 + at_s)
    if kind == "delivered":
        return status("delivered", at_s, channel="email", latency_s=at_s % 7)
    return event(kind, at_s)


class Partition:
    """One input partition: records whose bytes name an event, in offset order."""

    def __init__(self, number: int, events: list[tuple[str, int]]) -> None:
        self.records = [
            SourceRecord(TOPIC, number, offset, None, f"{kind}|{at_s}".encode())
            for offset, (kind, at_s) in enumerate(events)
        ]


def decode(topic: str, raw: bytes | None) -> tuple[str, BaseModel]:
    if raw is None:
        raise PoisonError("no value")
    kind, at_s = raw.decode().split("|")
    found = _event(kind, int(at_s))
    family = {"order": "orders", "auth": "auth", "user": "users"}.get(
        kind.split(".")[0], "notifications"
    )
    return family, found


# Events of one partition: up to ten minutes of event time, out of order within a partition.
partition_events = st.lists(
    st.tuples(st.sampled_from(KINDS), st.integers(0, 600)), min_size=0, max_size=8
)


@st.composite
def batched(draw: st.DrawFn, partitions: list[Partition]) -> list[list[SourceRecord]]:
    """The partitions' records interleaved (each in offset order) and cut into batches."""
    queues = [list(p.records) for p in partitions]
    order_of = draw(
        st.permutations([i for i, q in enumerate(queues) for _ in q]),
    )
    merged = [queues[i].pop(0) for i in order_of]
    cuts = sorted(draw(st.sets(st.integers(1, max(1, len(merged) - 1)), max_size=4)))
    bounds = [0, *[c for c in cuts if c < len(merged)], len(merged)]
    return [merged[a:b] for a, b in itertools.pairwise(bounds) if b > a]


@st.composite
def interleaved(draw: st.DrawFn, partials: list[MetricsPartial]) -> list[MetricsPartial]:
    """`partials` in any order that keeps each source's own order: they travel on a topic of one
    partition, and one worker at a time collects each input partition."""
    by_source: dict[str | None, list[MetricsPartial]] = {}
    for partial in partials:
        by_source.setdefault(partial.source, []).append(partial)
    queues = list(by_source.values())
    picks = draw(st.permutations([i for i, q in enumerate(queues) for _ in q]))
    return [queues[i].pop(0) for i in picks]


def new_aggregator(window: WindowConfig = CONFIG) -> tuple[WindowAggregator, dict[str, Any]]:
    panes: dict[str, Any] = {}
    clock: dict[str, Any] = {}
    return WindowAggregator(window, panes, clock), clock


def partials_of(batches: list[list[SourceRecord]]) -> list[MetricsPartial]:
    collector = MetricsCollector(CONFIG, decode)
    return [p for batch in batches for p in collector.partials(batch, wall_s=0.0)]


def close_all(aggregator: WindowAggregator, wall_s: float = END_WALL_S) -> list[WindowResult]:
    """Close what the watermark passed after a timer's tick made at `wall_s` (the stream's
    clock: far past every event by default, so the idle rule closes every window)."""
    aggregator.fold(MetricsPartial(wall_s=wall_s))
    closed = aggregator.closable()
    if closed is None:
        return []
    aggregator.record_closed(closed)
    return closed.results


def fold_then_close(partials: list[MetricsPartial]) -> list[WindowResult]:
    aggregator, _ = new_aggregator()
    for partial in partials:
        aggregator.fold(partial.model_copy(deep=True))
    return close_all(aggregator)


def two_partitions(first: list[tuple[str, int]], second: list[tuple[str, int]]) -> list[Partition]:
    return [Partition(0, first), Partition(1, second)]


@settings(max_examples=60)
@given(data=st.data(), first=partition_events, second=partition_events)
def test_any_batching_and_any_order_of_partials_gives_the_same_windows(
    data: st.DataObject, first: list[tuple[str, int]], second: list[tuple[str, int]]
) -> None:
    partitions = two_partitions(first, second)
    one_batch = [[r for p in partitions for r in p.records]]
    expected = fold_then_close(partials_of(one_batch))
    partials = partials_of(data.draw(batched(partitions)))
    assert fold_then_close(data.draw(interleaved(partials))) == expected
    counted = sum(
        r.events for r in expected if isinstance(r, EventsWindow) and r.kind == "tumbling"
    )
    assert counted == len(first) + len(second)


@settings(max_examples=60)
@given(data=st.data(), first=partition_events, second=partition_events)
def test_a_partial_sent_again_is_folded_once(
    data: st.DataObject, first: list[tuple[str, int]], second: list[tuple[str, int]]
) -> None:
    """The collector re-sends the partials of a batch it had not committed; anywhere later."""
    partitions = two_partitions(first, second)
    partials = partials_of(data.draw(batched(partitions)))
    expected = fold_then_close(partials)
    resent: list[MetricsPartial] = list(partials)
    for _ in range(data.draw(st.integers(0, 3))):
        if not partials:
            break
        which = data.draw(st.integers(0, len(partials) - 1))
        later = data.draw(st.integers(resent.index(partials[which]) + 1, len(resent)))
        resent.insert(later, partials[which])
    assert fold_then_close(resent) == expected


@settings(max_examples=60)
@given(
    data=st.data(),
    first=partition_events,
    second=partition_events,
    walls=st.lists(st.integers(0, 400), max_size=6),
)
def test_with_closes_in_between_every_event_is_in_one_tumbling_window_or_late(
    data: st.DataObject,
    first: list[tuple[str, int]],
    second: list[tuple[str, int]],
    walls: list[int],
) -> None:
    """The order-dependent case, by its own rule: late events are counted, never lost or
    doubled, and each window is published once."""
    batches = data.draw(batched(two_partitions(first, second)))
    aggregator, clock = new_aggregator()
    collector = MetricsCollector(CONFIG, decode)
    published: list[WindowResult] = []
    for number, batch in enumerate(batches):
        wall_s = float(walls[number]) if number < len(walls) else 0.0
        for partial in collector.partials(batch, wall_s=wall_s):
            aggregator.fold(partial)
        published += close_all(aggregator, wall_s)
    published += close_all(aggregator)
    events = [r for r in published if isinstance(r, EventsWindow)]
    tumbling = sum(r.events for r in events if r.kind == "tumbling")
    assert tumbling + clock.get(CLOCK_KEY, {}).get("dropped_late", 0) == len(first) + len(second)
    keys = [(type(r).__name__, r.key) for r in published]
    assert len(keys) == len(set(keys))


@st.composite
def replays(draw: st.DrawFn) -> tuple[list[tuple[str, int]], list[int], int, int, list[int]]:
    """One partition read to offset `folded`, committed at ANY offset `resumed` up to there (a
    topic's committed offset is the lowest that every agent reading it has acknowledged, so it
    falls inside the collector's batches as often as not), then read again from there to the
    end in other batches."""
    events = draw(st.lists(st.tuples(st.sampled_from(KINDS), st.integers(0, 50)), min_size=2))
    n = len(events)
    first_cuts = sorted(draw(st.sets(st.integers(1, n - 1), max_size=3)))
    folded = draw(st.sampled_from([*first_cuts, n]))
    resumed = draw(st.integers(0, min(folded, n - 1)))
    second_cuts = sorted(draw(st.sets(st.integers(resumed + 1, n), max_size=3)))
    return events, first_cuts, folded, resumed, second_cuts


def cut(
    records: list[SourceRecord], start: int, cuts: list[int], end: int
) -> list[list[SourceRecord]]:
    bounds = [start, *[c for c in cuts if start < c < end], end]
    return [records[a:b] for a, b in itertools.pairwise(bounds) if b > a]


# Issue 14, "Windows": a replay from a committed offset, cut elsewhere, counts each event once.
@example(replay=([("order.created", 0), ("order.created", 0)], [1], 1, 0, []))
# The chaos run's over-count: read [0, 3) in one batch, another agent on the topic had
# acknowledged only [0, 1) when the worker died, so its next owner reads [1, 3) again.
@example(replay=([("user.created", 0)] * 3, [], 3, 1, []))
@settings(max_examples=40)
@given(replay=replays())
def test_a_replay_with_other_batch_boundaries_counts_each_event_once(
    replay: tuple[list[tuple[str, int]], list[int], int, int, list[int]],
) -> None:
    events, first_cuts, folded, resumed, second_cuts = replay
    records = Partition(0, events).records
    expected = fold_then_close(partials_of([records]))
    aggregator, _ = new_aggregator()
    collector = MetricsCollector(CONFIG, decode)
    for batch in [
        *cut(records, 0, first_cuts, folded),
        *cut(records, resumed, second_cuts, len(records)),
    ]:
        for partial in collector.partials(batch, wall_s=0.0):
            aggregator.fold(partial)
    assert close_all(aggregator) == expected


# Issue 14, "Windows", the chaos run's case: a worker killed while the other goes on. Each
# partition's events come in time order, each processed as it happens (its partial made at its
# own event time) and followed by the workers' ticks reporting what they have read; partition 1's
# worker dies after `alive` of its events and its next owner reads the backlog `stall_s` later.
STALLING = config(stall_s=180.0, report_ttl_s=15.0)
T0_S = T0_MS // 1000  # the factories' events are seconds past it
sorted_events = partition_events.map(lambda events: sorted(events, key=lambda e: e[1]))


def fold_step(
    aggregator: WindowAggregator,
    collector: MetricsCollector,
    records: list[SourceRecord],
    wall_s: float,
    read: dict[str, bool],
) -> list[WindowResult]:
    for partial in collector.partials(records, wall_s=wall_s):
        aggregator.fold(partial)
    aggregator.fold(MetricsPartial(wall_s=wall_s, caught_up=read))
    closed = aggregator.closable()
    if closed is None:
        return []
    aggregator.record_closed(closed)
    return closed.results


@settings(max_examples=60)
@given(
    first=sorted_events,
    second=sorted_events,
    alive=st.integers(0, 8),
    stall_s=st.integers(20, 150),
)
def test_a_killed_workers_partition_read_later_loses_nothing_to_lateness(
    first: list[tuple[str, int]], second: list[tuple[str, int]], alive: int, stall_s: int
) -> None:
    p0, p1 = Partition(0, first).records, Partition(1, second).records
    at = {id(r): int(r.value.decode().split("|")[1]) for r in [*p0, *p1]}  # type: ignore[union-attr]
    alive = min(alive, len(p1))
    killed_s = at[id(p1[alive - 1])] if alive else 0
    resumed_s = killed_s + stall_s
    backlog = [r for r in p1[alive:] if at[id(r)] <= resumed_s]
    later = p1[alive + len(backlog) :]
    aggregator, clock = new_aggregator(STALLING)
    collector = MetricsCollector(STALLING, decode)
    published: list[WindowResult] = []

    def live(records: list[SourceRecord], p1_read: bool | None) -> None:
        for record in sorted(records, key=lambda r: at[id(r)]):
            read = {"orders:0": True} | ({} if p1_read is None else {"orders:1": p1_read})
            wall_s = T0_S + at[id(record)]
            published.extend(fold_step(aggregator, collector, [record], wall_s, read))

    live([*[r for r in p0 if at[id(r)] <= killed_s], *p1[:alive]], p1_read=True)
    # Its last tick: both read (every worker ticks every few seconds, events or not).
    both = {"orders:0": True, "orders:1": True}
    published += fold_step(aggregator, collector, [], T0_S + killed_s, both)
    live([r for r in p0 if killed_s < at[id(r)] <= resumed_s], p1_read=None)  # nobody has it
    took_over_s = T0_S + resumed_s
    published += fold_step(aggregator, collector, [], took_over_s, {"orders:1": False})
    published += fold_step(aggregator, collector, backlog, took_over_s, {"orders:1": True})
    live([*[r for r in p0 if at[id(r)] > resumed_s], *later], p1_read=True)
    # The stream goes quiet, both partitions read: the idle rule closes every window.
    published += fold_step(aggregator, collector, [], T0_S + END_WALL_S, both)
    assert clock[CLOCK_KEY].get("dropped_late", 0) == 0
    tumbling = [r for r in published if isinstance(r, EventsWindow) and r.kind == "tumbling"]
    assert sum(r.events for r in tumbling) == len(first) + len(second)
