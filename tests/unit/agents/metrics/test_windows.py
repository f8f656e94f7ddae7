"""Windows in event time: assignment, aggregation, watermark, grace, close-once, idle close."""

from __future__ import annotations

import random
from typing import Any

import pytest

from agents.metrics.collector import MetricsCollector
from agents.metrics.windows import (
    CLOCK_KEY,
    MetricsPartial,
    Window,
    WindowAggregator,
    latency_bucket,
    percentile_ms,
)
from schemas.analytics import AuthWindow, DeliveryWindow, EventsWindow, OrdersWindow, WindowResult
from tests.unit.agents.metrics_factories import (
    T0_MS,
    Inputs,
    config,
    event,
    order,
    status,
)

MINUTE_MS = 60_000


def aggregator(**changes: Any) -> tuple[WindowAggregator, dict[str, Any], dict[str, Any]]:
    panes: dict[str, Any] = {}
    clock: dict[str, Any] = {}
    return WindowAggregator(config(**changes), panes, clock), panes, clock


def fold_events(agg: WindowAggregator, inputs: Inputs, *events: Any, wall_s: float = 0.0) -> None:
    for partial in inputs.partials(agg.config, list(events), wall_s):
        agg.fold(partial)


def close(agg: WindowAggregator, tick_s: float | None = None) -> list[WindowResult]:
    """Close what the watermark passed, after a timer's tick made at `tick_s` when given."""
    if tick_s is not None:
        agg.fold(MetricsPartial(wall_s=tick_s))
    closed = agg.closable()
    if closed is None:
        return []
    agg.record_closed(closed)
    return closed.results


def tumbling(results: list[WindowResult], kind: type[WindowResult]) -> list[Any]:
    return [r for r in results if isinstance(r, kind) and r.kind == "tumbling"]


@pytest.mark.parametrize(
    ("offset_ms", "start_ms"),
    [(0, 0), (59_999, 0), (60_000, 60_000), (119_999, 60_000)],
)
def test_a_tumbling_window_holds_its_start_but_not_its_end(offset_ms: int, start_ms: int) -> None:
    window = config()
    [first, *hops] = window.windows_of(window.pane_of(T0_MS + offset_ms))
    assert first == Window("tumbling", T0_MS + start_ms, MINUTE_MS, MINUTE_MS)
    assert len(hops) == 5


def test_a_pane_is_in_five_hopping_windows_of_five_minutes_stepping_by_one() -> None:
    window = config()
    hops = [w for w in window.windows_of(T0_MS + 4 * MINUTE_MS) if w.kind == "hopping"]
    assert [w.start_ms - T0_MS for w in hops] == [0, 60_000, 120_000, 180_000, 240_000]
    assert all(w.end_ms - w.start_ms == 5 * MINUTE_MS for w in hops)
    # the last millisecond of the 5th minute is in the window starting at T0; the next one not
    last = [w.start_ms for w in window.windows_of(window.pane_of(T0_MS + 5 * MINUTE_MS - 1))]
    after = [w.start_ms for w in window.windows_of(window.pane_of(T0_MS + 5 * MINUTE_MS))]
    assert T0_MS in last
    assert T0_MS not in after


def test_panes_are_the_common_divisor_of_sizes_and_step() -> None:
    assert config().pane_ms == MINUTE_MS
    assert config(tumbling_s=30).pane_ms == 30_000
    assert config(hopping_s=120, step_s=40, tumbling_s=60).pane_ms == 20_000
    with pytest.raises(ValueError, match="whole number of steps"):
        config(hopping_s=300, step_s=70)


def test_events_are_counted_per_family_and_type() -> None:
    agg, _, _ = aggregator()
    inputs = Inputs()
    fold_events(
        agg,
        inputs,
        event("user.created", 1),
        event("user.created", 2),
        event("user.deleted", 3),
        event("auth.login-succeeded", 4),
        event("auth.login-failed", 5),
        event("auth.login-failed", 6),
        event("auth.suspicious-login", 7),
        event("user.created", 200),  # moves the watermark past the first minute (+30 s grace)
    )
    results = close(agg)
    [users] = [r for r in tumbling(results, EventsWindow) if r.family == "users"]
    assert (users.events, users.by_type) == (3, {"user.created": 2, "user.deleted": 1})
    [auth] = tumbling(results, AuthWindow)
    assert (auth.events, auth.logins, auth.login_failures, auth.suspicious_logins) == (4, 1, 2, 1)
    assert users.key == "tumbling:60:2026-11-21T12:00:00Z:users"
    assert auth.key == "tumbling:60:2026-11-21T12:00:00Z:all"


def test_revenue_and_average_order_value_are_per_currency_in_minor_units() -> None:
    agg, _, _ = aggregator()
    fold_events(
        agg,
        Inputs(),
        order("order.created", 1, "EUR"),
        order("order.paid", 2, "EUR", 1000),
        order("order.paid", 3, "EUR", 2001),
        order("order.paid", 4, "JPY", 500),
        order("order.cancelled", 5, "EUR"),
        order("order.refunded", 6, "EUR", 700),
        order("order.created", 7, "USD"),
        order("order.created", 200, "USD"),
    )
    by_currency = {r.currency: r for r in tumbling(close(agg), OrdersWindow)}
    eur = by_currency["EUR"]
    assert (eur.events, eur.orders_created, eur.orders_paid) == (5, 1, 2)
    assert (eur.revenue_minor, eur.average_order_value_minor) == (3001, 1500)
    assert (eur.cancellations, eur.refunds, eur.refunded_minor) == (1, 1, 700)
    assert (by_currency["JPY"].revenue_minor, by_currency["JPY"].average_order_value_minor) == (
        500,
        500,
    )
    assert by_currency["USD"].average_order_value_minor is None  # nothing paid: no average


def test_a_window_closes_only_when_the_watermark_passes_its_end_plus_grace() -> None:
    agg, _, _ = aggregator()
    inputs = Inputs()
    fold_events(agg, inputs, event("user.created", 10), event("user.created", 89))
    assert close(agg) == []  # watermark 89 - 30 = 59 s: the first minute is still open
    fold_events(agg, inputs, event("user.created", 90))
    [window] = tumbling(close(agg), EventsWindow)
    assert (window.window_start.second, window.window_end.minute, window.events) == (0, 1, 1)


def test_a_late_event_within_grace_updates_the_window_before_it_closes() -> None:
    agg, _, clock = aggregator()
    inputs = Inputs()
    fold_events(agg, inputs, order("order.paid", 5, total_minor=100), order("order.paid", 80))
    assert close(agg) == []
    fold_events(agg, inputs, order("order.paid", 20, total_minor=50))  # late, but within grace
    fold_events(agg, inputs, order("order.created", 95))
    [window] = [r for r in tumbling(close(agg), OrdersWindow) if r.window_start.minute == 0]
    assert (window.orders_paid, window.revenue_minor) == (2, 150)
    assert clock[CLOCK_KEY].get("dropped_late", 0) == 0


def test_an_event_later_than_grace_is_dropped_and_counted_and_nothing_is_republished() -> None:
    agg, _, clock = aggregator()
    inputs = Inputs()
    fold_events(agg, inputs, event("user.created", 5), event("user.created", 100))
    first = close(agg)
    assert len(tumbling(first, EventsWindow)) == 1
    fold_events(agg, inputs, event("user.created", 10), event("user.created", 11))
    assert clock[CLOCK_KEY]["dropped_late"] == 2
    assert close(agg) == []  # nothing new to close, and the closed window is never re-sent
    fold_events(agg, inputs, event("user.created", 1000))
    again = close(agg)
    assert all(r.window_start.minute != 0 or r.kind == "hopping" for r in again)
    # the hopping windows that contain minute 0 were still open: they took the late events
    [hop] = [r for r in again if r.kind == "hopping" and r.window_start.minute == 0]
    assert isinstance(hop, EventsWindow)
    assert hop.events == 4


def test_each_window_is_published_once_whatever_the_number_of_closes() -> None:
    agg, _, _ = aggregator()
    inputs = Inputs()
    published: list[str] = []
    for second in range(0, 900, 7):
        fold_events(agg, inputs, event("auth.logout", second))
        published.extend(r.key for r in close(agg))
    fold_events(agg, inputs, event("auth.logout", 3600))
    published.extend(r.key for r in close(agg))
    assert len(published) == len(set(published))
    assert sum(k.startswith("tumbling:") and k.endswith(":all") for k in published) == 15
    # a hopping window of 5 minutes every minute: from T0-4 min to T0+14 min
    assert sum(k.startswith("hopping:300:") and k.endswith(":all") for k in published) == 19


def test_panes_no_open_window_needs_are_evicted() -> None:
    agg, panes, _ = aggregator()
    inputs = Inputs()
    fold_events(agg, inputs, event("user.created", 5), event("user.created", 200))
    close(agg)
    assert str(T0_MS) in panes  # minute 0 is still in open hopping windows
    fold_events(agg, inputs, event("user.created", 400))
    close(agg)
    assert str(T0_MS) not in panes


def test_an_idle_stream_closes_its_windows_by_the_streams_own_clock() -> None:
    agg, _, _ = aggregator(idle_s=10.0)
    inputs = Inputs()
    fold_events(agg, inputs, event("user.created", 5), wall_s=1000.0)
    assert close(agg) == []  # no tick since: the stream's clock has not moved
    assert close(agg, tick_s=1009.9) == []  # not idle yet: nothing moves
    results = close(agg, tick_s=1100.0)  # idle 100 s: event time taken as 5 + 100 s
    # the windows ending at T0 + 1 min: the tumbling one, and the hopping one from T0 - 4 min
    assert sorted(r.kind for r in results) == ["hopping", "tumbling"]
    assert {r.window_end.minute for r in results} == {1}
    results = close(agg, tick_s=1400.0)
    assert [r.kind for r in results] == ["hopping"] * 4


def test_an_aggregator_catching_up_on_a_backlog_does_not_take_its_lag_for_idleness() -> None:
    """Found by the chaos run (`make chaos`): the aggregator's partition waits a minute or more
    after its worker is killed, then reads the partials sent meanwhile. The stream never went
    quiet (a partial every 10 s, by the collectors' clocks), so however late the aggregator reads
    them, nothing is taken for idleness and the event of 25 s is not dropped as late."""
    agg, _, clock = aggregator(idle_s=60.0)
    inputs = Inputs()
    t0_s = T0_MS / 1000
    fold_events(agg, inputs, event("user.created", 5), wall_s=t0_s + 5)
    close(agg)
    # Read 90 s after they were sent, one batch at a time, as after a takeover.
    fold_events(agg, inputs, event("user.created", 15), wall_s=t0_s + 15)
    close(agg)
    fold_events(agg, inputs, event("user.created", 25), wall_s=t0_s + 25)
    close(agg)
    assert clock[CLOCK_KEY].get("dropped_late", 0) == 0


def fold_on(
    agg: WindowAggregator, inputs: Inputs, partition: int, *events: Any, wall_s: float
) -> None:
    collector = MetricsCollector(agg.config, inputs.decode)
    for partial in collector.partials(inputs.records(list(events), partition), wall_s):
        agg.fold(partial)


def report(agg: WindowAggregator, wall_s: float, **read: bool) -> None:
    """A worker's tick naming the `users` partitions it owns: p0=True is users:0 read."""
    caught_up = {f"users:{name.removeprefix('p')}": value for name, value in read.items()}
    agg.fold(MetricsPartial(wall_s=wall_s, caught_up=caught_up))


T0_S = T0_MS / 1000


def test_a_killed_workers_partition_holds_the_windows_until_its_next_owner_reads_it() -> None:
    """Found by the chaos run: a killed worker's partitions send nothing until the group hands
    them on, a minute or more later; meanwhile the others' events must not close the windows
    those partitions still have events for."""
    agg, _, clock = aggregator(stall_s=180.0, report_ttl_s=15.0)
    inputs = Inputs()
    fold_on(agg, inputs, 0, event("user.created", 5), wall_s=T0_S + 5)
    fold_on(agg, inputs, 1, event("user.created", 6), wall_s=T0_S + 6)
    report(agg, T0_S + 7, p0=True)  # worker A
    report(agg, T0_S + 7, p1=True)  # worker B, killed right after
    for at_s in (60, 100, 150):  # partition 0 goes on; A reports it read
        fold_on(agg, inputs, 0, event("user.created", at_s), wall_s=T0_S + at_s)
        report(agg, T0_S + at_s, p0=True)
        assert close(agg) == []  # held at partition 1's latest event (6 s) minus the grace
    assert agg.holding() == ["users:1"]
    # A takes partition 1 over and reads what was waiting: nothing of it is late.
    report(agg, T0_S + 155, p0=True, p1=False)
    fold_on(agg, inputs, 1, event("user.created", 20), wall_s=T0_S + 160)
    assert close(agg) == []  # still reading partition 1: held at 20 s - 30 s
    fold_on(agg, inputs, 1, event("user.created", 152), wall_s=T0_S + 161)
    report(agg, T0_S + 162, p0=True, p1=True)
    closed = tumbling(close(agg), EventsWindow)  # watermark 150 - 30 s: two minutes closed
    assert [(w.window_start.minute, w.events) for w in closed] == [(0, 3), (1, 2)]
    assert clock[CLOCK_KEY].get("dropped_late", 0) == 0


def test_a_sparse_partition_its_worker_reports_read_holds_nothing() -> None:
    """A partition with a burst a minute must not hold every window behind its last event."""
    agg, _, _ = aggregator(stall_s=180.0, report_ttl_s=15.0)
    inputs = Inputs()
    fold_on(agg, inputs, 1, event("user.created", 6), wall_s=T0_S + 6)
    for at_s in (5, 60, 100, 150):
        fold_on(agg, inputs, 0, event("user.created", at_s), wall_s=T0_S + at_s)
        report(agg, T0_S + at_s, p0=True, p1=True)
    closed = tumbling(close(agg), EventsWindow)  # watermark 150 - 30 s, as without holds
    assert [(w.window_start.minute, w.events) for w in closed] == [(0, 2), (1, 2)]
    assert agg.holding() == []


def test_a_report_holds_no_longer_than_it_stands() -> None:
    agg, _, _ = aggregator(stall_s=180.0, report_ttl_s=15.0)
    inputs = Inputs()
    fold_on(agg, inputs, 1, event("user.created", 6), wall_s=T0_S + 6)
    report(agg, T0_S + 7, p1=True)  # then its worker dies
    fold_on(agg, inputs, 0, event("user.created", 20), wall_s=T0_S + 20)
    report(agg, T0_S + 20, p0=True)
    assert agg.holding() == []  # 13 s after the report: it stands
    fold_on(agg, inputs, 0, event("user.created", 150), wall_s=T0_S + 150)
    report(agg, T0_S + 150, p0=True)
    assert agg.holding() == ["users:1"]
    assert close(agg) == []


def test_a_partition_known_only_by_reports_holds_at_when_it_was_last_read() -> None:
    """No event yet on partition 1 when its worker dies: whatever comes on it later was
    appended after its last report that it was read, so that is where it holds."""
    agg, _, clock = aggregator(stall_s=180.0, report_ttl_s=15.0)
    inputs = Inputs()
    fold_on(agg, inputs, 0, event("user.created", 5), wall_s=T0_S + 5)
    report(agg, T0_S + 10, p0=True, p1=True)  # then partition 1's worker dies
    for at_s in (60, 100, 150):
        fold_on(agg, inputs, 0, event("user.created", at_s), wall_s=T0_S + at_s)
        report(agg, T0_S + at_s, p0=True)
    assert agg.holding() == ["users:1"]
    assert close(agg) == []  # held at 10 s - 30 s
    fold_on(agg, inputs, 1, event("user.created", 40), wall_s=T0_S + 155)  # its next owner
    report(agg, T0_S + 156, p0=True, p1=True)
    closed = tumbling(close(agg), EventsWindow)
    assert [(w.window_start.minute, w.events) for w in closed] == [(0, 2), (1, 2)]
    assert clock[CLOCK_KEY].get("dropped_late", 0) == 0


def test_a_partition_silent_past_the_stall_time_holds_nothing() -> None:
    agg, _, _ = aggregator(stall_s=180.0)
    inputs = Inputs()
    fold_on(agg, inputs, 0, event("user.created", 5), wall_s=T0_S + 5)
    fold_on(agg, inputs, 1, event("user.created", 6), wall_s=T0_S + 6)
    fold_on(agg, inputs, 0, event("user.created", 150), wall_s=T0_S + 150)
    assert close(agg) == []
    # 190 s of the stream's clock without a word on partition 1: it no longer holds.
    fold_on(agg, inputs, 0, event("user.created", 196), wall_s=T0_S + 196)
    [window] = tumbling(close(agg), EventsWindow)
    assert (window.window_start.minute, window.events) == (0, 2)


def test_without_a_stall_time_no_partition_holds() -> None:
    agg, _, _ = aggregator()
    inputs = Inputs()
    fold_on(agg, inputs, 1, event("user.created", 6), wall_s=T0_S + 6)
    fold_on(agg, inputs, 0, event("user.created", 150), wall_s=T0_S + 150)
    [window] = tumbling(close(agg), EventsWindow)
    assert (window.window_start.minute, window.events) == (0, 1)


def test_an_event_stamped_far_ahead_counts_but_holds_the_watermark_back() -> None:
    agg, panes, clock = aggregator(max_future_s=30.0)
    inputs = Inputs()
    wall_s = T0_MS / 1000 + 10  # the collecting worker's clock: 10 s into the first minute
    day_s = 24 * 3600
    fold_events(agg, inputs, event("user.created", 5), event("user.created", day_s), wall_s=wall_s)
    # Without the cap the watermark would be a day ahead and close every window up to it.
    assert close(agg) == []
    assert agg.watermark_ms() == T0_MS + 10_000  # wall + 30 s allowed - 30 s grace
    assert str(T0_MS + day_s * 1000) in panes  # the event itself is kept in its own pane
    assert clock[CLOCK_KEY]["future_capped"] == 1
    # Time catches up: the first minute closes as usual, with the event of 5 s.
    fold_events(agg, inputs, event("user.created", 95), wall_s=wall_s + 90)
    [window] = tumbling(close(agg), EventsWindow)
    assert (window.window_start.minute, window.events) == (0, 1)


def test_a_partial_folded_again_changes_nothing() -> None:
    agg, panes, clock = aggregator()
    inputs = Inputs()
    [partial] = inputs.partials(agg.config, [event("user.created", 5), event("user.created", 6)])
    agg.fold(partial)
    before = {key: dict(value) for key, value in panes.items()}
    agg.fold(partial)
    assert panes == before
    assert clock[CLOCK_KEY]["duplicates"] == 1


def test_a_part_of_what_is_folded_is_skipped() -> None:
    """A partial inside what is folded, starting inside a folded partial: a duplicate."""
    agg, panes, clock = aggregator()
    inputs = Inputs()
    records = inputs.records([event("user.created", s) for s in (5, 6, 7)])
    collector = MetricsCollector(agg.config, inputs.decode)
    [whole] = collector.partials(records, 0.0)
    agg.fold(whole)
    before = {key: dict(value) for key, value in panes.items()}
    [inside] = collector.partials(records[1:], 0.0)
    agg.fold(inside)
    assert panes == before
    assert clock[CLOCK_KEY]["duplicates"] == 1


def test_a_replay_cut_elsewhere_counts_each_event_once() -> None:
    """Read to offset 4 in batches [0, 3) [3, 4), committed at 2 (another agent on the topic
    had acknowledged less), read again from 2 in one batch [2, 6): its records from 4 on are
    folded."""
    window = config()
    agg, _, clock = aggregator()
    inputs = Inputs()
    records = inputs.records([event("user.created", 5 + s) for s in range(6)])
    collector = MetricsCollector(window, inputs.decode)
    for batch in (records[0:3], records[3:4], records[2:6]):
        for partial in collector.partials(batch, 0.0):
            agg.fold(partial)
    results = close(agg, tick_s=10**9)
    [users] = [r for r in tumbling(results, EventsWindow) if r.family == "users"]
    assert users.events == 6
    assert clock[CLOCK_KEY]["replayed"] == 1


def test_an_earlier_versions_partial_overlapping_what_is_folded_is_folded_whole() -> None:
    """Partials without `records` (the tracker's transitions, which never repeat, and an
    earlier collector's) cannot be split: folded whole and counted as unresolved."""
    agg, _, clock = aggregator()
    inputs = Inputs()
    records = inputs.records([event("user.created", 5 + s) for s in range(4)])
    collector = MetricsCollector(agg.config, inputs.decode)
    [first] = collector.partials(records[0:3], 0.0)
    [again] = collector.partials(records[2:4], 0.0)
    agg.fold(first)
    agg.fold(again.model_copy(update={"records": None}))
    [users] = [r for r in tumbling(close(agg, tick_s=10**9), EventsWindow) if r.family == "users"]
    assert users.events == 5
    assert clock[CLOCK_KEY]["unresolved_replays"] == 1


def test_undecodable_records_are_counted_and_skipped() -> None:
    window = config()
    inputs = Inputs()
    collector_partials = inputs.partials(window, [b"garbage", event("user.created", 1)])
    assert len(collector_partials) == 2
    assert sum(len(p.panes) for p in collector_partials) == 1


def test_notification_outcomes_per_channel_with_latency_percentiles() -> None:
    agg, _, _ = aggregator()
    events = [status("delivered", 10, "email", latency_s=s / 100) for s in range(1, 101)]
    events += [status("bounced", 11, "email"), status("spam", 12, "email")]
    events += [status("delivered", 13, "sms"), status("failed", 14, None)]
    events += [status("queued", 200, "push")]
    fold_events(agg, Inputs(), *events)
    by_channel = {r.channel: r for r in tumbling(close(agg), DeliveryWindow)}
    email = by_channel["email"]
    assert (email.delivered, email.bounced, email.spam, email.latency_samples) == (100, 1, 1, 100)
    assert email.latency_p50_ms == pytest.approx(500, rel=0.03)
    assert email.latency_p95_ms == pytest.approx(950, rel=0.03)
    assert email.latency_p99_ms == pytest.approx(990, rel=0.03)
    assert by_channel["sms"].latency_samples == 0
    assert by_channel["sms"].latency_p50_ms is None
    assert by_channel["unknown"].outcomes == {"failed": 1}


def test_the_latency_sketch_is_bounded_and_accurate_within_its_bucket_width() -> None:
    rng = random.Random(7)
    samples = [rng.lognormvariate(6, 1.5) for _ in range(20_000)]
    histogram: dict[str, int] = {}
    for sample in samples:
        bucket = str(latency_bucket(sample))
        histogram[bucket] = histogram.get(bucket, 0) + 1
    assert len(histogram) < 300
    ordered = sorted(samples)
    for quantile in (0.5, 0.95, 0.99):
        exact = ordered[int(quantile * len(ordered)) - 1]
        assert percentile_ms(histogram, quantile) == pytest.approx(exact, rel=0.03)
    assert percentile_ms({}, 0.5) is None
    assert percentile_ms({"0": 3}, 0.99) == 0.5  # under a millisecond (or negative skew)
