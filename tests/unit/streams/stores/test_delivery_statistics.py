"""How a statistics range is split between rollups and rows, and percentiles from a histogram."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta, timezone

import pytest

from streams.stores.delivery_rollups import GROWTH
from streams.stores.delivery_statistics import Segment, Tally, bucket_value_s, segments

T0 = datetime(2026, 12, 6, 10, 0, tzinfo=UTC)


def at(hours: int = 0, minutes: int = 0, seconds: float = 0) -> datetime:
    return T0 + timedelta(hours=hours, minutes=minutes, seconds=seconds)


def test_a_range_within_one_minute_is_read_from_rows() -> None:
    assert segments(at(seconds=5), at(seconds=50)) == [
        Segment("rows", at(seconds=5), at(seconds=50))
    ]


def test_whole_hours_come_from_hours_and_the_edges_from_minutes_then_rows() -> None:
    start, end = at(minutes=58, seconds=30), at(hours=3, minutes=2, seconds=10)
    assert segments(start, end) == [
        Segment("rows", start, at(minutes=59)),
        Segment("minute", at(minutes=59), at(hours=1)),
        Segment("hour", at(hours=1), at(hours=3)),
        Segment("minute", at(hours=3), at(hours=3, minutes=2)),
        Segment("rows", at(hours=3, minutes=2), end),
    ]


def test_an_aligned_range_has_no_edges() -> None:
    assert segments(at(), at(hours=2)) == [Segment("hour", at(), at(hours=2))]
    assert segments(at(minutes=3), at(minutes=9)) == [
        Segment("minute", at(minutes=3), at(minutes=9))
    ]


def test_a_range_within_one_hour_uses_minutes_only() -> None:
    start, end = at(minutes=10, seconds=1), at(minutes=40)
    assert segments(start, end) == [
        Segment("rows", start, at(minutes=11)),
        Segment("minute", at(minutes=11), at(minutes=40)),
    ]


def test_segments_are_whole_utc_minutes_and_hours_whatever_the_time_zone() -> None:
    india = timezone(timedelta(hours=5, minutes=30))
    start = datetime(2026, 12, 6, 15, 17, 3, tzinfo=UTC).astimezone(india)
    end = start + timedelta(hours=30, seconds=7)
    parts = segments(start, end)
    assert (parts[0].start, parts[-1].end) == (start, end)
    assert all(a.end == b.start for a, b in itertools.pairwise(parts))
    hours = next(part for part in parts if part.source == "hour")
    assert (hours.start, hours.end) == (at(hours=6), at(hours=35))


def test_percentiles_are_nearest_rank_within_the_buckets_error() -> None:
    tally = Tally()
    for bucket, count in ((20, 1), (30, 2), (40, 1)):
        tally.add_bucket(bucket, count)
    # Four latencies: ranks 1..4; p50 is the 2nd (bucket 30), p95 and p99 the 4th.
    assert tally.latency_s(0.5) == bucket_value_s(30)
    assert tally.latency_s(0.95) == tally.latency_s(0.99) == bucket_value_s(40)
    assert tally.latency_s(0.25) == bucket_value_s(20)


def test_a_buckets_value_is_within_the_relative_error_of_its_bounds() -> None:
    error = (GROWTH - 1) / (GROWTH + 1)
    for bucket in (1, 17, 90):
        upper = 0.010 * GROWTH**bucket
        lower = upper / GROWTH
        value = bucket_value_s(bucket)
        assert lower < value < upper
        assert value / lower - 1 == pytest.approx(error)
        assert 1 - value / upper == pytest.approx(error)


def test_no_latency_no_percentile_and_empty_tallies_are_empty() -> None:
    assert Tally().latency_s(0.5) is None
    assert Tally().is_empty()
    moved = Tally(notifications=0)
    moved.add_histogram([0, 0])
    assert moved.is_empty()


def test_tallies_add_counts_and_histograms_of_any_length() -> None:
    a, b = Tally(notifications=2, delivered=1), Tally(notifications=3, spam=1)
    a.add_histogram([1])
    b.add_histogram([0, 0, 2])
    a.add(b)
    assert (a.notifications, a.delivered, a.spam, a.histogram) == (5, 1, 1, [1, 0, 2])
