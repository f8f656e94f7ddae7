"""`GET /v1/stats/delivery` read from the rollups (`delivery_rollups`): how a range is split
between hours, minutes and rows, the counts and histograms summed per channel and category, and
the groups the API answers (per channel and category, per channel, overall) with their
nearest-rank percentiles."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from streams.stores.delivery_rollups import (
    CHANGE_COLUMNS,
    COUNTS,
    FLOOR_MS,
    GROWTH,
    OUTCOMES,
    ROLLUPS,
    ceil_to,
    floor_to,
    long_form_sql,
)


@dataclass(frozen=True, slots=True)
class DeliveryStats:
    """One group of `/v1/stats/delivery`.

    `scope` says which: "channel+category", "channel" (all its categories) or "all"; within a
    scope a None channel or category means the notification's was not known.
    """

    scope: str
    channel: str | None
    category: str | None
    total: int
    delivered: int
    failed: int
    bounced: int
    spam: int
    latency_p50_s: float | None
    latency_p95_s: float | None
    latency_p99_s: float | None


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
        self.add_counts(
            other.notifications, other.delivered, other.failed, other.bounced, other.spam
        )
        self.add_histogram(other.histogram)

    def add_counts(
        self, notifications: int, delivered: int, failed: int, bounced: int, spam: int
    ) -> None:
        self.notifications += notifications
        self.delivered += delivered
        self.failed += failed
        self.bounced += bounced
        self.spam += spam

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
    """A part of a range read from one source: the "hour" or "minute" rollups (`ROLLUPS`) or
    the deliveries' "rows"."""

    source: str
    start: datetime
    end: datetime


def segments(start: datetime, end: datetime) -> list[Segment]:
    """[start, end) as whole hours in the middle, whole minutes around them and the seconds at
    either edge, none empty."""
    start, end = start.astimezone(UTC), end.astimezone(UTC)
    minute, hour = timedelta(minutes=1), timedelta(hours=1)
    first_minute, last_minute = ceil_to(start, minute), floor_to(end, minute)
    if first_minute >= last_minute:
        return [Segment("rows", start, end)]
    first_hour, last_hour = ceil_to(first_minute, hour), floor_to(last_minute, hour)
    if first_hour >= last_hour:
        middle = [Segment("minute", first_minute, last_minute)]
    else:
        middle = [
            Segment("minute", first_minute, first_hour),
            Segment("hour", first_hour, last_hour),
            Segment("minute", last_hour, last_minute),
        ]
    parts = [Segment("rows", start, first_minute), *middle, Segment("rows", last_minute, end)]
    return [part for part in parts if part.start < part.end]


Key = tuple[str, str]


async def read_tallies(
    conn: AsyncConnection, deliveries: sa.Table, start: datetime, end: datetime, channel: str | None
) -> dict[Key, Tally]:
    """Per (channel, category) ('' when unknown), the notifications created in [start, end)."""
    tallies: defaultdict[Key, Tally] = defaultdict(Tally)
    for part in segments(start, end):
        params = {"start": part.start, "end": part.end, "channel": channel}
        if part.source == "rows":
            query = _rows_query(deliveries)
            for row in (await conn.execute(query, params)).mappings():
                tally = tallies[(row["channel"], row["category"])]
                tally.add_counts(row["n"], *(row[name] for name in OUTCOMES))
                if row["bucket"] is not None:
                    tally.add_bucket(row["bucket"], row["n"])
        else:
            query = _rollup_query(ROLLUPS[part.source])
            for row in (await conn.execute(query, params)).mappings():
                tally = tallies[(row["channel"], row["category"])]
                tally.add_counts(*(row[name] for name in COUNTS))
                tally.add_histogram(row["latency_buckets"])
    return tallies


_CHANNEL = "(CAST(:channel AS text) IS NULL OR channel = CAST(:channel AS text))"


def _rows_query(deliveries: sa.Table) -> sa.TextClause:
    changes = (
        f"SELECT {CHANGE_COLUMNS}, 1 AS n FROM {deliveries.name}"  # noqa: S608
        f" WHERE created_at >= :start AND created_at < :end AND {_CHANNEL}"
    )
    return sa.text(long_form_sql(changes))


def _rollup_query(table: sa.Table) -> sa.TextClause:
    return sa.text(
        f"SELECT channel, category, {', '.join(COUNTS)}, latency_buckets FROM {table.name}"  # noqa: S608
        f" WHERE period >= :start AND period < :end AND {_CHANNEL}"
    )


def groups(tallies: dict[Key, Tally]) -> list[DeliveryStats]:
    """Per (channel, category), then the channel's total after its categories, the overall
    total last (an unknown channel or category first among its peers)."""
    kept = {key: tally for key, tally in tallies.items() if not tally.is_empty()}
    groups: list[DeliveryStats] = []
    overall = Tally()
    for channel in sorted({channel for channel, _ in kept}):
        in_channel = Tally()
        for (name, category), tally in sorted(kept.items()):
            if name == channel:
                groups.append(_stats("channel+category", channel, category, tally))
                in_channel.add(tally)
        groups.append(_stats("channel", channel, None, in_channel))
        overall.add(in_channel)
    groups.append(_stats("all", None, None, overall))
    return groups


def _stats(scope: str, channel: str | None, category: str | None, tally: Tally) -> DeliveryStats:
    return DeliveryStats(
        scope=scope,
        channel=channel or None,
        category=category or None,
        total=tally.notifications,
        delivered=tally.delivered,
        failed=tally.failed,
        bounced=tally.bounced,
        spam=tally.spam,
        latency_p50_s=tally.latency_s(0.5),
        latency_p95_s=tally.latency_s(0.95),
        latency_p99_s=tally.latency_s(0.99),
    )
