"""The delivery statistics' rollups against the real PostgreSQL: any range counts exactly what
the rows say, a notification that changes is counted once where it now is, and the migration's
fill counts what the writes counted."""

from __future__ import annotations

import math
import random
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from streams.settings import Settings
from streams.stores.database import create_engine
from streams.stores.delivery_rollups import ROLLUPS, backfill_sql
from streams.stores.delivery_statistics import DeliveryStats
from streams.stores.delivery_store import DeliveryStore, DeliveryValues
from tests.integration.streams.stores.test_delivery_store import row, unique_epoch

OUTCOMES = ("delivered", "failed", "bounced", "spam")


@pytest.fixture
async def store(settings: Settings) -> AsyncIterator[DeliveryStore]:
    store = DeliveryStore.from_settings(settings.database)
    yield store
    await store.close()


def random_rows(t0: datetime, count: int, rng: random.Random) -> list[DeliveryValues]:
    rows = []
    for _ in range(count):
        created = t0 + timedelta(seconds=rng.uniform(0, 3 * 3600))
        state = rng.choice(("queued", "sent", "delivered", "delivered", "failed", "bounced"))
        latency_s = rng.uniform(0.05, 120)
        delivered = state == "delivered" or (state == "bounced" and rng.random() < 0.5)
        rows.append(
            row(
                f"n-{uuid.uuid4()}",
                state,
                created + timedelta(seconds=latency_s),
                channel=rng.choice(("email", "email", "sms", None)),
                category=rng.choice(("account", "orders", None)),
                created_at=created,
                caused_at=created,
                delivered_at=created + timedelta(seconds=latency_s) if delivered else None,
            )
        )
    return rows


def expected(rows: list[DeliveryValues], start: datetime, end: datetime) -> dict[Any, Any]:
    """Per (scope, channel, category): the counts, and every latency, from the rows."""
    groups: dict[Any, dict[str, Any]] = defaultdict(
        lambda: {"total": 0, **dict.fromkeys(OUTCOMES, 0), "latencies": []}
    )
    for r in rows:
        if not start <= r.created_at < end:
            continue
        for key in (
            ("channel+category", r.channel, r.category),
            ("channel", r.channel, None),
            ("all", None, None),
        ):
            group = groups[key]
            group["total"] += 1
            if r.state in OUTCOMES:
                group[r.state] += 1
            if r.delivered_at is not None and r.caused_at is not None:
                group["latencies"].append((r.delivered_at - r.caused_at).total_seconds())
    return groups


def assert_matches(found: list[DeliveryStats], truth: dict[Any, Any]) -> None:
    by_key = {(g.scope, g.channel, g.category): g for g in found}
    assert set(by_key) == set(truth) | {("all", None, None)}
    for key, group in truth.items():
        stats = by_key[key]
        counts = (stats.total, stats.delivered, stats.failed, stats.bounced, stats.spam)
        assert counts == (group["total"], *(group[name] for name in OUTCOMES)), key
        latencies = sorted(group["latencies"])
        for quantile, value in (
            (0.5, stats.latency_p50_s),
            (0.95, stats.latency_p95_s),
            (0.99, stats.latency_p99_s),
        ):
            if not latencies:
                assert value is None, key
                continue
            nearest = latencies[max(1, math.ceil(quantile * len(latencies))) - 1]
            assert value == pytest.approx(nearest, rel=0.05), (key, quantile)


async def test_any_range_counts_what_the_rows_say(store: DeliveryStore) -> None:
    t0, rng = unique_epoch(), random.Random(7)
    rows = random_rows(t0, 400, rng)
    for start in range(0, len(rows), 37):  # several transactions, each adding to the rollups
        await store.write(rows[start : start + 37], [])
    ranges = [
        (t0, t0 + timedelta(hours=3)),  # whole hours
        (t0 + timedelta(minutes=17, seconds=33), t0 + timedelta(hours=2, minutes=41.2)),
        (t0 + timedelta(minutes=65, seconds=10), t0 + timedelta(minutes=65, seconds=40)),
        (t0 + timedelta(minutes=59, seconds=59), t0 + timedelta(minutes=61, seconds=1)),
        (t0 + timedelta(minutes=10), t0 + timedelta(minutes=50)),
        (t0 - timedelta(hours=1), t0 + timedelta(hours=4, seconds=1)),
    ]
    for start, end in ranges:
        assert_matches(await store.stats(start, end), expected(rows, start, end))
    sms_rows = [r for r in rows if r.channel == "sms"]
    start, end = ranges[1]
    assert_matches(await store.stats(start, end, channel="sms"), expected(sms_rows, start, end))


async def test_a_notification_that_changes_is_counted_once_where_it_now_is(
    store: DeliveryStore,
) -> None:
    t0, n = unique_epoch(), f"n-{uuid.uuid4()}"
    hour = (t0, t0 + timedelta(hours=1))

    async def only_group() -> tuple[Any, ...]:
        [group] = [g for g in await store.stats(*hour) if g.scope == "channel+category"]
        counts = (group.total, group.delivered, group.bounced)
        return (group.channel, group.category, *counts, group.latency_p50_s)

    created = t0 + timedelta(seconds=90)
    # A receipt first: neither channel nor category is known yet.
    first = row(n, "queued", created, channel=None, category=None, created_at=created)
    await store.write([first], [])
    assert await only_group() == (None, None, 1, 0, 0, None)

    sent = row(n, "sent", created + timedelta(seconds=1), created_at=t0 + timedelta(seconds=10))
    await store.write([sent], [])
    assert await only_group() == ("email", "account", 1, 0, 0, None)
    # created_at moved to the first minute: the second one is empty now.
    assert [g.total for g in await store.stats(t0, t0 + timedelta(minutes=1))][-1] == 1
    assert [g.total for g in await store.stats(t0 + timedelta(minutes=1), created)] == [0]

    delivered_at = created + timedelta(seconds=30)
    caused_at = delivered_at - timedelta(seconds=3)
    delivered = row(n, "delivered", delivered_at, caused_at=caused_at)
    await store.write([delivered], [])
    assert await only_group() == ("email", "account", 1, 1, 0, pytest.approx(3, rel=0.05))

    stale = row(
        n, "queued", created, caused_at=caused_at
    )  # older than what the row holds: refused, nothing moves
    await store.write([stale], [])
    assert await only_group() == ("email", "account", 1, 1, 0, pytest.approx(3, rel=0.05))

    later = delivered_at + timedelta(minutes=5)
    bounced = row(n, "bounced", later, caused_at=caused_at, delivered_at=None)
    await store.write([bounced], [])
    # Delivered first, so its latency stays (delivered_at is kept).
    assert await only_group() == ("email", "account", 1, 0, 1, pytest.approx(3, rel=0.05))


def in_window(table: sa.Table, t0: datetime) -> sa.Select[Any]:
    period = table.c.period
    return (
        sa.select(table)
        .where(period >= t0, period < t0 + timedelta(hours=4))
        .order_by(period, table.c.channel, table.c.category)
    )


async def test_the_migrations_fill_counts_what_the_writes_counted(
    store: DeliveryStore, settings: Settings
) -> None:
    t0 = unique_epoch()
    rows = random_rows(t0, 200, random.Random(11))
    for start in range(0, len(rows), 50):
        await store.write(rows[start : start + 50], [])
    for start in range(0, len(rows), 30):  # the same rows again: replays change nothing
        await store.write(rows[start : start + 30], [])
    window = {"start": t0, "end": t0 + timedelta(hours=4)}
    engine = create_engine(settings.database)
    try:
        async with engine.begin() as conn:
            await conn.execute(
                sa.text(
                    "CREATE TEMPORARY TABLE these_deliveries ON COMMIT DROP AS SELECT * FROM "
                    "notification_deliveries WHERE created_at >= :start AND created_at < :end"
                ),
                window,
            )
            for unit, table in ROLLUPS.items():
                filled = table.to_metadata(sa.MetaData(), name=f"filled_{table.name}")
                await conn.execute(
                    sa.text(
                        f"CREATE TEMPORARY TABLE {filled.name} (LIKE {table.name} INCLUDING ALL)"
                        " ON COMMIT DROP"
                    )
                )
                await conn.execute(backfill_sql("these_deliveries", filled, unit))
                written = (await conn.execute(in_window(table, t0))).all()
                refilled = (await conn.execute(in_window(filled, t0))).all()
                assert written == refilled
                assert len(written) > 10
    finally:
        await engine.dispose()
