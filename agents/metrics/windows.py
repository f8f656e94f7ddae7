"""Event-time windows of the metrics agent, without Faust: panes, watermark, closing, results.

State is kept per PANE, the greatest common divisor of the window sizes and the hop, not per
window: an event updates one pane, and a window's result is the merge of its panes when it
closes. A 5-minute window hopping by 1 minute is then five 1-minute panes instead of five
copies of every counter. Every aggregate is a nested dict of integer counters (a latency
histogram included), so that merging is a plain sum and the state is JSON for Faust's tables.

Time is event time (`occurred_at`, in epoch milliseconds). The watermark is the latest event
time seen minus the grace period; a window closes, once, when the watermark passes its end, and
an event whose pane belongs only to closed windows is dropped and counted.

An input partition nobody is known to have read to its end HOLDS the watermark at its own latest
event. When a worker is killed, its partitions send nothing until the group hands them on, a
minute or more later; with the latest event of any partition as the watermark, the others'
events closed the windows meanwhile and the orphaned partitions' events all came late (the chaos
run found it). So every worker's tick names the source partitions it owns and whether its
fetching has reached their end (`caught_up`); a partition counts as read while its latest
report, younger than `report_ttl_ms` by the stream's clock, says so. An unread partition holds
at its latest event or at when it was last reported read, whichever is later (nothing appended
before that was left unread), while heard from (a partial or a report) within `stall_ms`, so
one that is gone for good (a topic deleted) does not hold forever. A sparse partition (a burst
a minute) owned by a live worker is reported read and holds nothing: a hold by silence alone
held every window behind it.

On a stream that has gone quiet for `idle_s`, event time is taken to advance with the stream's
own clock, so the last windows close too rather than waiting for the next event. That clock is
the latest wall time a partial was made at, ticks included (every worker sends one every
`tick_s`), never the aggregator's own: after a takeover it reads a backlog of partials made a
minute earlier and would take its own lag for idleness, closing windows before their events
arrive (found by the chaos run, `make chaos`).

A partial covers one batch's offsets of one input partition, and a collecting worker that dies
before committing reads that partition again from its last committed offset, in batches cut
elsewhere. That offset is not the start of one of the collector's batches: the collector shares
its topics with other agents (the router, the views), and Faust commits the lowest offset that
every agent reading the topic has acknowledged, so a replay starts wherever the slowest of them
was (the chaos run found windows counting an event twice). So the aggregator keeps, per input
partition, the next offset it has not folded (`offsets` in the clock): every record before it is
counted once, none after it. A collector's partial lists what each of its records adds
(`records`), and a partial that starts before that offset folds only its records from there on;
one that ends before it is skipped whole. Every event then counts once whatever the batches of
either pass, with no state but one offset per partition.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping, MutableMapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, Field

from schemas.analytics import (
    ALL,
    AuthWindow,
    DeliveryWindow,
    EventsWindow,
    OrdersWindow,
    WindowKind,
    WindowResult,
)

# A nested dict of counters: {section: {dimension: {counter: n | {name: n}}}}.
Aggregate = dict[str, Any]
CLOCK_KEY = "clock"
# What one record adds: (offset, pane start in epoch ms, counters).
RecordCounts = tuple[int, int, Aggregate]

# Latency histogram: bucket i >= 1 holds [GAMMA**(i-1), GAMMA**i) ms, bucket 0 under 1 ms.
# 5% wide buckets bound the error of a percentile to 2.5%, with at most ~370 buckets up to a day.
LATENCY_GAMMA = 1.05


class MetricsPartial(BaseModel):
    """What one batch of one input partition adds (or a timer's tick, with no panes).

    `first_offset`..`last_offset` let the aggregator skip a partial it has already folded (the
    collecting agent re-sends after a crash between sending and committing its offsets), and
    `records` fold the part of a replay that is not (see the module doc).
    """

    source: str | None = None
    first_offset: int = -1
    last_offset: int = -1
    # The collector's partials: what each decoded record adds, in offset order, so that a replay
    # folds only the records past what is folded. None in the tracker's transitions (read again,
    # a record whose step its store already holds makes none: they never repeat) and in the
    # partials of versions before it (folded whole, as then).
    records: list[RecordCounts] | None = None
    max_event_ms: int | None = None
    wall_s: float
    panes: dict[int, Aggregate] = Field(default_factory=dict)
    # A tick's report: the source partitions ("topic:partition") its worker owns -> whether its
    # fetching has reached their end.
    caught_up: dict[str, bool] = Field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class WindowConfig:
    tumbling_ms: int
    hopping_ms: int
    step_ms: int
    grace_ms: int
    idle_ms: int
    # How far ahead of the collecting worker's clock an event may move the watermark; None: any.
    max_future_ms: int | None = None
    # An unread input partition heard from within this holds the watermark (see the module
    # doc); None: no partition holds, the watermark is the latest event of any.
    stall_ms: int | None = None
    # How long a worker's report that it has read a partition to its end stands.
    report_ttl_ms: int = 15_000

    @classmethod
    def of(
        cls,
        *,
        tumbling_s: int,
        hopping_s: int,
        step_s: int,
        grace_s: int,
        idle_s: float,
        max_future_s: float | None = None,
        stall_s: float | None = None,
        report_ttl_s: float = 15.0,
    ) -> WindowConfig:
        if hopping_s % step_s:
            raise ValueError("the hopping window must be a whole number of steps")
        future_ms = None if max_future_s is None else int(max_future_s * 1000)
        return cls(
            tumbling_s * 1000,
            hopping_s * 1000,
            step_s * 1000,
            grace_s * 1000,
            int(idle_s * 1000),
            future_ms,
            None if stall_s is None else int(stall_s * 1000),
            int(report_ttl_s * 1000),
        )

    @property
    def pane_ms(self) -> int:
        return math.gcd(self.tumbling_ms, self.hopping_ms, self.step_ms)

    def pane_of(self, event_ms: int) -> int:
        return event_ms - event_ms % self.pane_ms

    def windows_of(self, pane_ms: int) -> Iterator[Window]:
        """Every window that contains the pane starting at `pane_ms`."""
        start = pane_ms - pane_ms % self.tumbling_ms
        yield Window("tumbling", start, self.tumbling_ms, self.tumbling_ms)
        last = pane_ms - pane_ms % self.step_ms
        first = last - self.hopping_ms + self.step_ms
        for hop_start in range(first, last + 1, self.step_ms):
            yield Window("hopping", hop_start, self.hopping_ms, self.step_ms)

    def first_end(self, pane_ms: int) -> int:
        """When the first window containing the pane ends (closes first)."""
        return min(window.end_ms for window in self.windows_of(pane_ms))

    def last_end(self, pane_ms: int) -> int:
        """When the last window containing the pane ends: the pane is needed until then."""
        return max(window.end_ms for window in self.windows_of(pane_ms))


@dataclass(frozen=True, slots=True, order=True)
class Window:
    kind: WindowKind
    start_ms: int
    size_ms: int
    step_ms: int

    @property
    def end_ms(self) -> int:
        return self.start_ms + self.size_ms


def merge(into: Aggregate, more: Mapping[str, Any]) -> Aggregate:
    """Adds `more`'s counters into `into` (nested dicts of ints), and returns `into`."""
    for name, value in more.items():
        if isinstance(value, Mapping):
            merge(into.setdefault(name, {}), value)
        else:
            into[name] = into.get(name, 0) + value
    return into


def panes_since(records: Iterable[RecordCounts], offset: int) -> dict[int, Aggregate]:
    """What the records from `offset` on add, per pane."""
    panes: dict[int, Aggregate] = {}
    for record_offset, pane_ms, counts in records:
        if record_offset >= offset:
            merge(panes.setdefault(pane_ms, {}), counts)
    return panes


def total(aggregate: Mapping[str, Any]) -> int:
    """The events a pane holds (every event is counted once under `events`)."""
    families: Mapping[str, Mapping[str, int]] = aggregate.get("events", {})
    return sum(sum(types.values()) for types in families.values())


def latency_bucket(latency_ms: float) -> int:
    if latency_ms < 1:
        return 0
    return 1 + int(math.log(latency_ms) / math.log(LATENCY_GAMMA))


def bucket_value_ms(bucket: int) -> float:
    """A bucket's representative: the middle of its bounds (0.5 ms for the first)."""
    if bucket == 0:
        return 0.5
    return float(LATENCY_GAMMA ** (bucket - 1) * (1 + LATENCY_GAMMA) / 2)


def percentile_ms(histogram: Mapping[str, int], quantile: float) -> float | None:
    """The `quantile` (0..1] of a latency histogram (bucket index as text -> count)."""
    count = sum(histogram.values())
    if count == 0:
        return None
    rank = max(1, math.ceil(quantile * count))
    seen = 0
    for bucket in sorted(histogram, key=int):
        seen += histogram[bucket]
        if seen >= rank:
            return round(bucket_value_ms(int(bucket)), 3)
    raise AssertionError("unreachable: the ranks add up to the count")


@dataclass(slots=True)
class ClosedWindows:
    """Results of one close, and the state to record once they are published."""

    results: list[WindowResult]
    closed_ms: int
    evict: list[str] = field(default_factory=list)


class WindowAggregator:
    """Folds partials into panes and closes windows; state in two mappings (Faust tables).

    `panes` maps a pane start (text, epoch ms) to its aggregate; `clock` holds one entry,
    `CLOCK_KEY`, with the watermark inputs, what is closed, offsets folded and the late count.
    """

    def __init__(
        self,
        config: WindowConfig,
        panes: MutableMapping[str, Aggregate],
        clock: MutableMapping[str, dict[str, Any]],
    ) -> None:
        self.config = config
        self._panes = panes
        self._clock = clock

    def state(self) -> dict[str, Any]:
        return dict(self._clock.get(CLOCK_KEY) or {})

    def fold(self, partial: MetricsPartial) -> None:
        """Adds a partial's panes, dropping those only closed windows contain."""
        state = self.state()
        state["stream_wall_s"] = max(state.get("stream_wall_s", partial.wall_s), partial.wall_s)
        panes = partial.panes if partial.source is None else self._unfolded(partial, state)
        if panes is None:
            state["duplicates"] = state.get("duplicates", 0) + 1
            self._clock[CLOCK_KEY] = state
            return
        self._fold_panes(panes, state)
        if partial.max_event_ms is not None:
            latest = self._capped(partial.max_event_ms, partial.wall_s, state)
            state["max_event_ms"] = max(state.get("max_event_ms", latest), latest)
            if partial.source is not None and self.config.stall_ms is not None:
                _source_heard(state, str(partial.source), latest, partial.wall_s)
        if partial.source is None:
            state["last_tick_wall_s"] = partial.wall_s
            if partial.caught_up and self.config.stall_ms is not None:
                _reports_heard(state, partial.caught_up, partial.wall_s)
        self._clock[CLOCK_KEY] = state

    def _unfolded(
        self, partial: MetricsPartial, state: dict[str, Any]
    ) -> Mapping[int, Aggregate] | None:
        """The panes of what `partial` adds that is not folded yet (None: all of it is), moving
        its partition's next offset past it."""
        source = str(partial.source)
        offsets: dict[str, int] = dict(state.get("offsets", {}))
        expected = offsets.get(source, 0)
        if partial.last_offset < expected:
            return None
        panes = partial.panes
        if partial.first_offset < expected:
            if partial.records is None:  # not one its records can split: folded whole
                state["unresolved_replays"] = state.get("unresolved_replays", 0) + 1
            else:
                state["replayed"] = state.get("replayed", 0) + 1
                panes = panes_since(partial.records, expected)
        offsets[source] = partial.last_offset + 1
        state["offsets"] = offsets
        state["last_input_wall_s"] = partial.wall_s
        return panes

    def _fold_panes(self, panes: Mapping[int, Aggregate], state: dict[str, Any]) -> None:
        """Merges `panes` into the table (late ones may be dropped)."""
        closed_ms = state.get("closed_ms")
        for pane_ms, aggregate in panes.items():
            # Too late for its tumbling window (the first of its windows to close): counted.
            # Still folded while a longer window that contains it is open, as each window takes
            # what arrives before it closes; dropped outright once every one of them is closed.
            if closed_ms is not None and self.config.first_end(pane_ms) <= closed_ms:
                state["dropped_late"] = state.get("dropped_late", 0) + total(aggregate)
                if self.config.last_end(pane_ms) <= closed_ms:
                    continue
            key = str(pane_ms)
            self._panes[key] = merge(dict(self._panes.get(key) or {}), aggregate)

    def _capped(self, event_ms: int, wall_s: float, state: dict[str, Any]) -> int:
        """One event stamped far in the future (a wrong clock upstream) must not close every
        open window at once: it counts in its own pane, but moves the watermark no further
        than `max_future_ms` past the clock of the worker that collected it."""
        cap = self.config.max_future_ms
        if cap is None or event_ms <= wall_s * 1000 + cap:
            return event_ms
        state["future_capped"] = state.get("future_capped", 0) + 1
        return int(wall_s * 1000) + cap

    def watermark_ms(self) -> int | None:
        """The latest event time minus the grace, moved on by the stream's idle time and held
        by the unread input partitions (see the module doc)."""
        state = self.state()
        latest = state.get("max_event_ms")
        if latest is None:
            return None
        stream_s = state.get("stream_wall_s")  # absent from a clock written before it was kept
        if stream_s is not None:
            idle_ms = int((stream_s - state.get("last_input_wall_s", stream_s)) * 1000)
            if idle_ms >= self.config.idle_ms:
                latest += idle_ms
            latest = min([latest, *self._holding(state, stream_s).values()])
        return int(latest) - self.config.grace_ms

    def holding(self) -> list[str]:
        """The input partitions holding the watermark now (the clock's `sources` and `reports`
        in the worker's table view say why)."""
        state = self.state()
        stream_s = state.get("stream_wall_s")
        return [] if stream_s is None else sorted(self._holding(state, stream_s))

    def _holding(self, state: Mapping[str, Any], stream_s: float) -> dict[str, int]:
        """The partitions that hold, each with the event time it holds the watermark at."""
        stall_ms = self.config.stall_ms
        if stall_ms is None:
            return {}
        sources: Mapping[str, list[Any]] = state.get("sources", {})
        reports: Mapping[str, list[Any]] = state.get("reports", {})
        holding = {}
        for source in sources.keys() | reports.keys():
            event_ms, heard_s = sources.get(source) or (None, None)
            reported_s, read, read_s = reports.get(source) or (None, False, None)
            fresh = (
                reported_s is not None
                and (stream_s - reported_s) * 1000 <= self.config.report_ttl_ms
            )
            if read and fresh:
                continue
            last_heard_s = max(s for s in (heard_s, reported_s) if s is not None)
            if (stream_s - last_heard_s) * 1000 >= stall_ms:
                continue
            # What it holds at: its latest event, or when it was last known read to its end,
            # whichever is later (a partition with no events since then has none before).
            read_ms = None if read_s is None else int(read_s * 1000)
            marks = [int(m) for m in (event_ms, read_ms) if m is not None]
            if marks:
                holding[source] = max(marks)
        return holding

    def closable(self) -> ClosedWindows | None:
        """Windows the watermark has passed and that are not closed yet, with their results."""
        watermark = self.watermark_ms()
        closed_ms = self.state().get("closed_ms")
        if watermark is None or (closed_ms is not None and watermark <= closed_ms):
            return None
        panes = {int(key): value for key, value in self._panes.items()}
        windows = sorted(
            {
                window
                for pane_ms in panes
                for window in self.config.windows_of(pane_ms)
                if window.end_ms <= watermark and (closed_ms is None or window.end_ms > closed_ms)
            },
            key=lambda window: (window.end_ms, window.kind, window.start_ms),
        )
        results: list[WindowResult] = []
        for window in windows:
            merged: Aggregate = {}
            for pane_ms in range(window.start_ms, window.end_ms, self.config.pane_ms):
                if pane_ms in panes:
                    merge(merged, panes[pane_ms])
            results.extend(window_results(window, merged))
        evict = [str(p) for p in panes if self.config.last_end(p) <= watermark]
        return ClosedWindows(results, watermark, evict)

    def record_closed(self, closed: ClosedWindows) -> None:
        """After publishing: the windows count as closed, and panes no window needs go."""
        state = self.state()
        state["closed_ms"] = max(closed.closed_ms, state.get("closed_ms", closed.closed_ms))
        state["published"] = state.get("published", 0) + len(closed.results)
        self._clock[CLOCK_KEY] = state
        for key in closed.evict:
            self._panes.pop(key, None)


def _source_heard(state: dict[str, Any], source: str, event_ms: int, wall_s: float) -> None:
    """Keeps `source`'s latest event and when it was last heard from, [event ms, wall s]."""
    sources: dict[str, list[Any]] = dict(state.get("sources", {}))
    seen = sources.get(source)
    sources[source] = [max(event_ms, int(seen[0])) if seen else event_ms, wall_s]
    state["sources"] = sources


def _reports_heard(state: dict[str, Any], caught_up: Mapping[str, bool], wall_s: float) -> None:
    """Keeps the latest report on each partition, [wall s, read to its end, when it was last
    reported read (None: never)]."""
    reports: dict[str, list[Any]] = dict(state.get("reports", {}))
    for source, read in caught_up.items():
        reported_s, _, read_s = reports.get(source) or (None, False, None)
        if reported_s is None or wall_s >= reported_s:
            reports[source] = [wall_s, read, wall_s if read else read_s]
    state["reports"] = reports


def _window_fields(window: Window) -> dict[str, Any]:
    return {
        "kind": window.kind,
        "window_start": datetime.fromtimestamp(window.start_ms / 1000, UTC),
        "window_end": datetime.fromtimestamp(window.end_ms / 1000, UTC),
        "window_size_s": window.size_ms // 1000,
        "window_step_s": window.step_ms // 1000,
    }


def window_results(window: Window, merged: Mapping[str, Any]) -> Iterable[WindowResult]:
    """One record per section and dimension that saw events in the window."""
    base = _window_fields(window)
    for family, types in sorted(merged.get("events", {}).items()):
        yield EventsWindow(**base, family=family, events=sum(types.values()), by_type=types)
    for currency, c in sorted(merged.get("orders", {}).items()):
        paid, revenue = c.get("paid", 0), c.get("revenue_minor", 0)
        yield OrdersWindow(
            **base,
            currency=currency,
            events=c.get("events", 0),
            orders_created=c.get("created", 0),
            orders_paid=paid,
            revenue_minor=revenue,
            average_order_value_minor=revenue // paid if paid else None,
            cancellations=c.get("cancelled", 0),
            refunds=c.get("refunded", 0),
            refunded_minor=c.get("refunded_minor", 0),
        )
    auth_types: dict[str, int] = merged.get("auth", {}).get(ALL, {})
    if auth_types:
        yield AuthWindow(
            **base,
            events=sum(auth_types.values()),
            logins=auth_types.get("auth.login-succeeded", 0),
            login_failures=auth_types.get("auth.login-failed", 0),
            suspicious_logins=auth_types.get("auth.suspicious-login", 0),
            by_type=auth_types,
        )
    for channel, d in sorted(merged.get("delivery", {}).items()):
        outcomes: dict[str, int] = d.get("outcomes", {})
        histogram: dict[str, int] = d.get("latency", {})
        yield DeliveryWindow(
            **base,
            channel=channel,
            events=sum(outcomes.values()),
            outcomes=outcomes,
            delivered=outcomes.get("delivered", 0),
            failed=outcomes.get("failed", 0),
            bounced=outcomes.get("bounced", 0),
            spam=outcomes.get("spam", 0),
            latency_samples=sum(histogram.values()),
            latency_p50_ms=percentile_ms(histogram, 0.50),
            latency_p95_ms=percentile_ms(histogram, 0.95),
            latency_p99_ms=percentile_ms(histogram, 0.99),
        )
