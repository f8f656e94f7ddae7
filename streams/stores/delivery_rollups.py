"""Delivery statistics kept as rollups: per minute and per hour, channel and category, the
notifications created in it, their outcomes and a histogram of their event→delivered latency.

`GET /v1/stats/delivery` used to aggregate `notification_deliveries` over the whole range on
every call: at 1,000 notifications/s an hour is 3.6 million rows, a 31-day range billions. Now
the tracker's batch writes keep these rows up to date in the same transaction as the deliveries
(each upsert returns what it changed: a row counted under its old state is taken out, under its
new one put in), and a range is read as whole hours from `notification_stats_hours`, the
minutes at its edges from `notification_stats_minutes`, and the seconds at its very edges from
the deliveries themselves, at most two minutes of rows (`delivery_statistics`): the counts are
exact for any range, and a 31-day range reads about 750 rows per channel and category. This
module holds the tables and the statements that write them: the tracker's additions, the
migration's fill and `rebuild`.

Latency is kept as a histogram of logarithmic buckets (each `GROWTH` times wider than the one
before, from `FLOOR_MS`), so a percentile is the nearest-rank latency to within
`(GROWTH - 1) / (GROWTH + 1)`, under 5 %: bucket `b` holds the latencies in
`(FLOOR_MS * GROWTH**(b-1), FLOOR_MS * GROWTH**b]` milliseconds, bucket 0 those up to `FLOOR_MS`.
A histogram is an integer array indexed by bucket, without trailing zeros.

An unknown channel or category (a receipt seen before its notification's statuses) is the empty
string in these tables, so that it can be part of their keys; readers get None back.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
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
COUNTS = ("notifications", *OUTCOMES)


def _rollup_table(name: str) -> sa.Table:
    return sa.Table(
        name,
        metadata,
        sa.Column("period", sa.DateTime(timezone=True), primary_key=True),
        sa.Column("channel", sa.Text, primary_key=True),
        sa.Column("category", sa.Text, primary_key=True),
        *(sa.Column(name, sa.BigInteger, nullable=False) for name in COUNTS),
        sa.Column("latency_buckets", sa.ARRAY(sa.Integer), nullable=False),
    )


notification_stats_minutes = _rollup_table("notification_stats_minutes")
notification_stats_hours = _rollup_table("notification_stats_hours")
ROLLUP_KEY = ("period", "channel", "category")
# By the unit of their periods (`date_trunc`'s name for it).
ROLLUPS = {"minute": notification_stats_minutes, "hour": notification_stats_hours}

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
    nonzero = " OR ".join(f"{name} <> 0" for name in COUNTS)
    return f"""
    SELECT period, channel, category, {", ".join(COUNTS)}, {dense} AS latency_buckets
      FROM ({per_key}) AS per_key
     WHERE {nonzero} OR top IS NOT NULL
     ORDER BY period, channel, category"""  # noqa: S608


def _merge_sql(table: sa.Table, keyed: str) -> sa.TextClause:
    t = table.name
    columns = ", ".join(c.name for c in table.columns)
    counts = ", ".join(f"{name} = {t}.{name} + EXCLUDED.{name}" for name in COUNTS)
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


def backfill_sql(
    deliveries: str, table: sa.Table, unit: str, *, in_range: bool = False
) -> sa.TextClause:
    """Adds every row of the `deliveries` table to `table` (a migration's first fill); with
    `in_range`, only those created in [:start, :end)."""
    changes = f"SELECT {CHANGE_COLUMNS}, 1 AS n FROM {deliveries}"  # noqa: S608
    if in_range:
        changes += " WHERE created_at >= :start AND created_at < :end"
    return _merge_sql(table, _keyed_sql(long_form_sql(changes, unit), unit))


@dataclass(frozen=True, slots=True)
class Rebuilt:
    start: datetime
    end: datetime
    notifications: int


async def rebuild(
    conn: AsyncConnection, deliveries: sa.Table, start: datetime, end: datetime
) -> Rebuilt:
    """The rollups of the whole hours around [start, end) counted again from the rows, in
    `conn`'s transaction, with the rows locked against writes meanwhile (the tracker's batches
    wait; reads go on). For rows the rollups missed: written by a worker of an earlier version
    after migration 0009 filled them, or changed by hand."""
    hour = timedelta(hours=1)
    start, end = floor_to(start.astimezone(UTC), hour), ceil_to(end.astimezone(UTC), hour)
    await conn.execute(sa.text(f"LOCK TABLE {deliveries.name} IN SHARE ROW EXCLUSIVE MODE"))
    bounds = {"start": start, "end": end}
    for unit, table in ROLLUPS.items():
        period = table.c.period
        await conn.execute(sa.delete(table).where(period >= start, period < end))
        await conn.execute(backfill_sql(deliveries.name, table, unit, in_range=True), bounds)
    counted = sa.select(sa.func.coalesce(sa.func.sum(notification_stats_hours.c.notifications), 0))
    hours = notification_stats_hours.c.period
    total = (await conn.execute(counted.where(hours >= start, hours < end))).scalar_one()
    return Rebuilt(start, end, int(total))


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def floor_to(moment: datetime, step: timedelta) -> datetime:
    return moment - (moment - _EPOCH) % step


def ceil_to(moment: datetime, step: timedelta) -> datetime:
    floor = floor_to(moment, step)
    return floor if floor == moment else floor + step


def long_form_params(rows: Iterable[Any]) -> dict[str, list[Any]]:
    """Long-form rows (as returned by a `long_form_sql` query) as one array per column."""
    columns: dict[str, list[Any]] = {name: [] for name in LONG_FORM}
    for row in rows:
        for name in LONG_FORM:
            columns[name].append(row[name])
    return columns
