"""Delivery statistics kept as rollups: per minute and per hour, channel and category, the
notifications created in it, their outcomes and a histogram of their event→delivered latency.

`GET /v1/stats/delivery` used to aggregate `notification_deliveries` over the whole range on
every call: at 1,000 notifications/s an hour is 3.6 million rows, a 31-day range billions. Now
the tracker's batch writes keep these rows up to date in the same transaction as the deliveries
(each upsert returns what it changed: a row counted under its old state is taken out, under its
new one put in), and a range is read as whole hours from `notification_stats_hours`, the
minutes at its edges from `notification_stats_minutes`, and the seconds at its very edges from
the deliveries themselves (at most two minutes of rows): the counts are exact for any range, and
a 31-day range reads about 750 rows per channel and category.

Latency is kept as a histogram of logarithmic buckets (each `GROWTH` times wider than the one
before, from `FLOOR_MS`), so a percentile is the nearest-rank latency to within
`(GROWTH - 1) / (GROWTH + 1)`, under 5 %: bucket `b` holds the latencies in
`(FLOOR_MS * GROWTH**(b-1), FLOOR_MS * GROWTH**b]` milliseconds, bucket 0 those up to `FLOOR_MS`.
A histogram is an integer array indexed by bucket, without trailing zeros.

An unknown channel or category (a receipt seen before its notification's statuses) is the empty
string in these tables, so that it can be part of their keys; readers get None back.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

metadata = sa.MetaData()

GROWTH = 1.1
FLOOR_MS = 10
OUTCOMES = ("delivered", "failed", "bounced", "spam")
# A long-form row: one bucket (None: no latency) of one period's channel and category.
LONG_FORM = ("period", "channel", "category", "bucket", "n", *OUTCOMES)
_COUNTS = ("notifications", *OUTCOMES)


def _rollup_table(name: str) -> sa.Table:
    return sa.Table(
        name,
        metadata,
        sa.Column("period", sa.DateTime(timezone=True), primary_key=True),
        sa.Column("channel", sa.Text, primary_key=True),
        sa.Column("category", sa.Text, primary_key=True),
        *(sa.Column(name, sa.BigInteger, nullable=False) for name in _COUNTS),
        sa.Column("latency_buckets", sa.ARRAY(sa.Integer), nullable=False),
    )


notification_stats_minutes = _rollup_table("notification_stats_minutes")
notification_stats_hours = _rollup_table("notification_stats_hours")
ROLLUP_KEY = ("period", "channel", "category")
ROLLUPS = {"minutes": notification_stats_minutes, "hours": notification_stats_hours}

# The latency's bucket from a row's delivered_at and caused_at (None without either).
_BUCKET = f"""CASE
    WHEN delivered_at IS NULL OR caused_at IS NULL THEN NULL
    WHEN delivered_at - caused_at <= interval '{FLOOR_MS} milliseconds' THEN 0
    ELSE least(ceil(ln(extract(epoch FROM delivered_at - caused_at) * {1000 / FLOOR_MS})
                    / ln({GROWTH})), 1000)::int
END"""
# What a delivery row contributes (n = 1) or takes back (n = -1).
CHANGE_COLUMNS = "created_at, channel, category, state, caused_at, delivered_at"


def long_form_sql(changes: str, unit: str = "minute") -> str:
    """`changes` (a query of `CHANGE_COLUMNS` and `n`) summed per period of `unit`, channel,
    category and latency bucket."""
    outcomes = ", ".join(
        f"coalesce(sum(n) FILTER (WHERE state = '{name}'), 0)::int AS {name}" for name in OUTCOMES
    )
    return f"""
    SELECT date_trunc('{unit}', created_at, 'UTC') AS period,
           coalesce(channel, '') AS channel, coalesce(category, '') AS category,
           {_BUCKET} AS bucket, sum(n)::int AS n, {outcomes}
      FROM ({changes}) AS changes
     GROUP BY 1, 2, 3, 4"""  # noqa: S608 - our own SQL, no values in it


def _keyed_sql(long_form: str, unit: str) -> str:
    """Long-form rows as one row per period of `unit`, channel and category, in key order (so
    that concurrent writers lock rollup rows in the same order)."""
    sums = ", ".join(f"sum({name}) AS {name}" for name in OUTCOMES)
    per_bucket = f"""
        SELECT date_trunc('{unit}', period, 'UTC') AS period, channel, category, bucket,
               sum(n) AS n, {sums}
          FROM ({long_form}) AS long_form GROUP BY 1, 2, 3, 4"""  # noqa: S608
    counted = "bucket IS NOT NULL AND n <> 0"
    per_key = f"""
        SELECT period, channel, category, sum(n) AS notifications, {sums},
               jsonb_object_agg(bucket, n) FILTER (WHERE {counted}) AS histogram,
               max(bucket) FILTER (WHERE {counted}) AS top
          FROM ({per_bucket}) AS per_bucket GROUP BY 1, 2, 3"""  # noqa: S608
    dense = (
        "ARRAY(SELECT coalesce((histogram ->> g::text)::int, 0)"
        " FROM generate_series(0, top) AS g ORDER BY g)"
    )
    nonzero = " OR ".join(f"{name} <> 0" for name in _COUNTS)
    return f"""
    SELECT period, channel, category, {", ".join(_COUNTS)}, {dense} AS latency_buckets
      FROM ({per_key}) AS per_key
     WHERE {nonzero} OR top IS NOT NULL
     ORDER BY period, channel, category"""  # noqa: S608


def _merge_sql(table: sa.Table, keyed: str) -> sa.TextClause:
    t = table.name
    columns = ", ".join(c.name for c in table.columns)
    counts = ", ".join(f"{name} = {t}.{name} + EXCLUDED.{name}" for name in _COUNTS)
    pairs = f"unnest({t}.latency_buckets, EXCLUDED.latency_buckets) WITH ORDINALITY"
    # Element-wise sum, trailing zeros left out (a histogram is the same array however its
    # counts arrived, which a replay's comparison relies on).
    nonzero = "coalesce(c, 0) + coalesce(d, 0) <> 0"
    last = f"(SELECT max(j) FROM {pairs} AS v(c, d, j) WHERE {nonzero})"  # noqa: S608
    merged = f"ARRAY(SELECT coalesce(a, 0) + coalesce(b, 0) FROM {pairs} AS u(a, b, i) WHERE i <= {last} ORDER BY i)"  # noqa: S608, E501
    return sa.text(
        f"INSERT INTO {t} ({columns}) {keyed} ON CONFLICT (period, channel, category) "
        f"DO UPDATE SET {counts}, latency_buckets = {merged}"
    )


def add_sql(table: sa.Table, unit: str) -> sa.TextClause:
    """Adds long-form rows (bound as one array per column of `LONG_FORM`) to `table`."""
    types = {"period": "timestamptz", "channel": "text", "category": "text"}
    arrays = ", ".join(f"CAST(:{name} AS {types.get(name, 'integer')}[])" for name in LONG_FORM)
    names = ", ".join(LONG_FORM)
    bound = f"SELECT {names} FROM unnest({arrays}) AS r({names})"  # noqa: S608
    return _merge_sql(table, _keyed_sql(bound, unit))


def backfill_sql(deliveries: str, table: sa.Table, unit: str) -> sa.TextClause:
    """Adds every row of the `deliveries` table to `table` (a migration's first fill)."""
    changes = f"SELECT {CHANGE_COLUMNS}, 1 AS n FROM {deliveries}"  # noqa: S608
    return _merge_sql(table, _keyed_sql(long_form_sql(changes, unit), unit))


@dataclass(slots=True)
class Tally:
    """Counts and a latency histogram, summed from rollup rows and long-form rows."""

    notifications: int = 0
    delivered: int = 0
    failed: int = 0
    bounced: int = 0
    spam: int = 0
    histogram: list[int] = field(default_factory=list)

    def is_empty(self) -> bool:
        """Nothing counted (a key every notification has moved out of)."""
        counts = (self.notifications, self.delivered, self.failed, self.bounced, self.spam)
        return not any(counts) and not any(self.histogram)

    def add(self, other: Tally) -> None:
        self.add_counts(other.notifications, other.delivered, other.failed, other.bounced)
        self.spam += other.spam
        self.add_histogram(other.histogram)

    def add_counts(self, notifications: int, delivered: int, failed: int, bounced: int) -> None:
        self.notifications += notifications
        self.delivered += delivered
        self.failed += failed
        self.bounced += bounced

    def add_histogram(self, counts: Sequence[int]) -> None:
        if len(counts) > len(self.histogram):
            self.histogram.extend([0] * (len(counts) - len(self.histogram)))
        for bucket, count in enumerate(counts):
            self.histogram[bucket] += count

    def add_bucket(self, bucket: int, count: int) -> None:
        if bucket >= len(self.histogram):
            self.histogram.extend([0] * (bucket + 1 - len(self.histogram)))
        self.histogram[bucket] += count

    def latency_s(self, quantile: float) -> float | None:
        """The nearest-rank latency at `quantile`: the bucket holding the ceil(q*N)-th smallest
        latency, as the value whose relative error to any latency in it is smallest."""
        total = sum(self.histogram)
        if total <= 0:
            return None
        rank = max(1, math.ceil(quantile * total - 1e-9))
        seen = 0
        for bucket, count in enumerate(self.histogram):
            seen += count
            if seen >= rank:
                return bucket_value_s(bucket)
        return bucket_value_s(len(self.histogram) - 1)


def bucket_value_s(bucket: int) -> float:
    return FLOOR_MS * 2 * GROWTH**bucket / (GROWTH + 1) / 1000


@dataclass(frozen=True, slots=True)
class Segment:
    """A part of a range read from one source: "hours", "minutes" or "rows" (the deliveries)."""

    source: str
    start: datetime
    end: datetime


def segments(start: datetime, end: datetime) -> list[Segment]:
    """[start, end) as whole hours in the middle, whole minutes around them and the seconds at
    either edge, none empty."""
    start, end = start.astimezone(UTC), end.astimezone(UTC)
    minute, hour = timedelta(minutes=1), timedelta(hours=1)
    first_minute, last_minute = _ceil(start, minute), _floor(end, minute)
    if first_minute >= last_minute:
        return [Segment("rows", start, end)]
    first_hour, last_hour = _ceil(first_minute, hour), _floor(last_minute, hour)
    if first_hour >= last_hour:
        middle = [Segment("minutes", first_minute, last_minute)]
    else:
        middle = [
            Segment("minutes", first_minute, first_hour),
            Segment("hours", first_hour, last_hour),
            Segment("minutes", last_hour, last_minute),
        ]
    parts = [Segment("rows", start, first_minute), *middle, Segment("rows", last_minute, end)]
    return [part for part in parts if part.start < part.end]


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _floor(moment: datetime, step: timedelta) -> datetime:
    return moment - (moment - _EPOCH) % step


def _ceil(moment: datetime, step: timedelta) -> datetime:
    floor = _floor(moment, step)
    return floor if floor == moment else floor + step


Key = tuple[str, str]


async def read_tallies(
    conn: AsyncConnection, deliveries: sa.Table, start: datetime, end: datetime, channel: str | None
) -> dict[Key, Tally]:
    """Per (channel, category) ('' when unknown), the notifications created in [start, end)."""
    tallies: dict[Key, Tally] = {}
    for part in segments(start, end):
        params = {"start": part.start, "end": part.end, "channel": channel}
        if part.source == "rows":
            query = _rows_query(deliveries)
            for row in (await conn.execute(query, params)).mappings():
                tally = _tally(tallies, row)
                tally.add_counts(row["n"], row["delivered"], row["failed"], row["bounced"])
                tally.spam += row["spam"]
                if row["bucket"] is not None:
                    tally.add_bucket(row["bucket"], row["n"])
        else:
            table = ROLLUPS[part.source]
            for row in (await conn.execute(_rollup_query(table), params)).mappings():
                tally = _tally(tallies, row)
                tally.add_counts(
                    row["notifications"], row["delivered"], row["failed"], row["bounced"]
                )
                tally.spam += row["spam"]
                tally.add_histogram(row["latency_buckets"])
    return tallies


def _tally(tallies: dict[Key, Tally], row: Any) -> Tally:
    key = (row["channel"], row["category"])
    if key not in tallies:
        tallies[key] = Tally()
    return tallies[key]


_CHANNEL = "(CAST(:channel AS text) IS NULL OR channel = CAST(:channel AS text))"


def _rows_query(deliveries: sa.Table) -> sa.TextClause:
    changes = (
        f"SELECT {CHANGE_COLUMNS}, 1 AS n FROM {deliveries.name}"  # noqa: S608
        f" WHERE created_at >= :start AND created_at < :end AND {_CHANNEL}"
    )
    return sa.text(long_form_sql(changes))


def _rollup_query(table: sa.Table) -> sa.TextClause:
    return sa.text(
        f"SELECT channel, category, {', '.join(_COUNTS)}, latency_buckets FROM {table.name}"  # noqa: S608
        f" WHERE period >= :start AND period < :end AND {_CHANNEL}"
    )


def long_form_params(rows: Iterable[Any]) -> dict[str, list[Any]]:
    """Long-form rows (as returned by a `long_form_sql` query) as one array per column."""
    columns: dict[str, list[Any]] = {name: [] for name in LONG_FORM}
    for row in rows:
        for name in LONG_FORM:
            columns[name].append(row[name])
    return columns
