"""`GET /v1/stats/delivery`'s read over many notifications: the rollups against the query that
aggregated the deliveries on every call (before session 19), on the same rows.

Seeds `--rows` delivered/failed/bounced notifications spread evenly over `--hours` of a day in
1980 (tests write from 1990 on) straight into `notification_deliveries` (SQL, not the tracker:
this measures the read), fills the rollups for them with the migration's statement, times
`DeliveryStore.stats` and the old query on a whole-hours range and on one with unaligned edges,
then deletes what it seeded. Needs the local stack (`make stack migrate`).

    python -m scripts.bench_delivery_stats [--rows 3600000] [--hours 24] [--runs 3]
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from streams.settings import Settings
from streams.stores.database import create_engine
from streams.stores.delivery_rollups import ROLLUPS, backfill_sql
from streams.stores.delivery_store import DeliveryStore

START = datetime(1980, 1, 1, tzinfo=UTC)
PREFIX = "bench-stats-"

_SEED = sa.text(
    """
    INSERT INTO notification_deliveries (notification_id, user_id, channel, category, template,
        state, state_rank, state_at, attempts, caused_at, queued_at, delivered_at, created_at,
        updated_at)
    SELECT :prefix || g, 'u' || (g % 1000), (ARRAY['email', 'sms', 'push'])[1 + g % 3],
           (ARRAY['account', 'orders', 'marketing', 'critical'])[1 + (g / 3) % 4], 'welcome',
           CASE WHEN g % 50 = 0 THEN 'failed' WHEN g % 97 = 0 THEN 'bounced' ELSE 'delivered' END,
           5, t, 1, t, t,
           CASE WHEN g % 50 = 0 THEN NULL
                ELSE t + (0.2 + (g % 1000) / 250.0) * interval '1 second' END,
           t, t
      FROM (SELECT g, CAST(:start AS timestamptz) + g * CAST(:step AS interval) AS t
              FROM generate_series(0, :rows - 1) AS g) AS s
    """
)

# The statistics' query before the rollups (session 18's code), for comparison.
_BEFORE = sa.text(
    """
    SELECT channel, category, count(*) AS total,
           count(*) FILTER (WHERE state = 'delivered') AS delivered,
           count(*) FILTER (WHERE state = 'failed') AS failed,
           count(*) FILTER (WHERE state = 'bounced') AS bounced,
           count(*) FILTER (WHERE state = 'spam') AS spam,
           percentile_cont(ARRAY[0.5, 0.95, 0.99]::float8[]) WITHIN GROUP (
               ORDER BY extract(epoch FROM delivered_at - caused_at)
           ) FILTER (WHERE delivered_at IS NOT NULL AND caused_at IS NOT NULL) AS latency_s
      FROM notification_deliveries
     WHERE created_at >= :start AND created_at < :end
     GROUP BY GROUPING SETS ((channel, category), (channel), ())
    """
)


# Seeding millions of rows, or the old query over them, takes longer than the 15 s a service's
# statement may (`TRIBUTARY_DATABASE_STATEMENT_TIMEOUT_S`).
_NO_TIMEOUT = sa.text("SET LOCAL statement_timeout = 0")


async def seed(engine: AsyncEngine, rows: int, hours: int) -> None:
    step = timedelta(hours=hours) / rows
    async with engine.begin() as conn:
        await conn.execute(_NO_TIMEOUT)
        params = {"prefix": PREFIX, "start": START, "step": step, "rows": rows}
        await conn.execute(_SEED, params)
        await conn.execute(
            sa.text(
                "CREATE TEMPORARY TABLE seeded ON COMMIT DROP AS SELECT * FROM "
                "notification_deliveries WHERE notification_id LIKE :like"
            ),
            {"like": PREFIX + "%"},
        )
        for unit, table in ROLLUPS.items():
            await conn.execute(backfill_sql("seeded", table, unit))


async def remove(engine: AsyncEngine, hours: int) -> None:
    end = START + timedelta(hours=hours + 1)
    async with engine.begin() as conn:
        await conn.execute(_NO_TIMEOUT)
        await conn.execute(
            sa.text("DELETE FROM notification_deliveries WHERE notification_id LIKE :like"),
            {"like": PREFIX + "%"},
        )
        for table in ROLLUPS.values():
            await conn.execute(
                sa.delete(table).where(table.c.period >= START, table.c.period < end)
            )


async def timed(runs: int, call: Callable[[], Awaitable[Any]]) -> list[float]:
    took = []
    for _ in range(runs):
        began = time.perf_counter()
        await call()
        took.append((time.perf_counter() - began) * 1000)
    return took


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=3_600_000)
    parser.add_argument("--hours", type=int, default=24)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    settings = Settings()
    engine = create_engine(settings.database)
    store = DeliveryStore(engine, settings.database.batch_rows)
    await remove(engine, args.hours)
    began = time.perf_counter()
    await seed(engine, args.rows, args.hours)
    print(
        f"seeded {args.rows:,} notifications over {args.hours} h and their rollups in "
        f"{time.perf_counter() - began:.1f} s"
    )
    ranges = {
        "whole hours": (START, START + timedelta(hours=args.hours)),
        "unaligned edges": (
            START + timedelta(minutes=37, seconds=21.5),
            START + timedelta(hours=args.hours - 1, minutes=12, seconds=8.25),
        ),
    }
    try:
        for name, (start, end) in ranges.items():

            async def before(start: datetime = start, end: datetime = end) -> None:
                async with engine.begin() as conn:
                    await conn.execute(_NO_TIMEOUT)
                    await conn.execute(_BEFORE, {"start": start, "end": end})

            async def rollups(start: datetime = start, end: datetime = end) -> None:
                await store.stats(start, end)

            old = await timed(args.runs, before)
            new = await timed(args.runs, rollups)
            print(
                f"{name:>16}: rollups {' / '.join(f'{ms:,.1f}' for ms in new)} ms,"
                f" aggregating the rows (before) {' / '.join(f'{ms:,.0f}' for ms in old)} ms"
            )
    finally:
        await remove(engine, args.hours)
        await engine.dispose()


if __name__ == "__main__":
    asyncio.run(main())
