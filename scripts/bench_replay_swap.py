"""Figures for a replay's swap (`streams.stores.shadow`): how long the live table stays locked
against writes while the shadow replaces it, for a view of N rows, by two strategies run in
turn on the same data (so that the load of a shared machine weighs on both alike):

* replace: the swap as it was first written: the differences counted by reads (`diff`), then
  every live row deleted and every shadow row inserted (`DELETE` + `INSERT ... SELECT`);
* differences: `ShadowViews.swap` now: only the rows removed, changed and added are written,
  and counted as they are written;

in two cases:

* repair: the shadow equals the live rows but for a few (1% changed, 0.2% added, 0.2% removed),
  the usual outcome of a replay over an intact or slightly damaged view;
* lost: the live table is empty (a lost database), every row is added.

It works on tables of its own (`bench_replay_swap` and its shadow, the columns of
`user_devices`), created and dropped in the configured database; nothing else is touched.

Usage: python scripts/bench_replay_swap.py [--rows 100000] [--runs 5]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from streams.settings import Settings
from streams.stores.database import create_engine
from streams.stores.session_store import user_devices
from streams.stores.shadow import ShadowTable, ShadowViews, _diff, _every_row

LIVE = user_devices.to_metadata(sa.MetaData(), name="bench_replay_swap")
TABLE = ShadowTable(LIVE, ("user_id", "device_id"))
T0 = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
CHUNK = 5000


def row(n: int, login_count: int = 1) -> dict[str, Any]:
    return {
        "user_id": f"u{n // 4}",
        "device_id": f"d{n % 4}",
        "first_seen_at": T0,
        "last_seen_at": T0 + timedelta(seconds=n),
        "last_ip": "203.0.113.7",
        "user_agent": "bench",
        "country": "FR",
        "login_count": login_count,
        "first_event_id": uuid.UUID(int=n),
        "flagged": n % 4 != 0,
        "revision": 1,
    }


async def insert(engine: AsyncEngine, table: sa.Table, rows: list[dict[str, Any]]) -> None:
    async with engine.begin() as conn:
        for start in range(0, len(rows), CHUNK):
            await conn.execute(sa.insert(table), rows[start : start + CHUNK])


async def prepared(engine: AsyncEngine, rows: int, case: str) -> ShadowViews:
    """The live table and its shadow, filled for `case`."""
    async with engine.begin() as conn:
        await conn.execute(sa.text(f"DROP TABLE IF EXISTS {LIVE.name}"))
        await conn.run_sync(lambda sync: LIVE.create(sync))
    shadows = ShadowViews(engine, [TABLE])
    await shadows.prepare()
    step = 1000  # every 1000th row: 10 changed, 2 added, 2 removed per 1000
    replayed = [
        row(n, login_count=2 if n % step < 10 else 1)
        for n in range(rows)
        if n % step not in (10, 11)
    ]
    replayed += [row(rows + n) for n in range(rows // 500)]
    live = [] if case == "lost" else [row(n) for n in range(rows)]
    await insert(engine, LIVE, live)
    await insert(engine, TABLE.shadow, replayed)
    async with engine.connect() as conn:
        await conn.execute(sa.text(f"ANALYZE {LIVE.name}"))
        await conn.execute(sa.text(f"ANALYZE {TABLE.shadow.name}"))
        await conn.commit()
    return shadows


async def nothing() -> None:
    return None


async def replace(engine: AsyncEngine, shadows: ShadowViews) -> None:
    """The first swap: lock, count the differences by reads, replace every row."""
    async with engine.begin() as conn:
        await conn.execute(sa.text(f"LOCK TABLE {LIVE.name} IN SHARE ROW EXCLUSIVE MODE"))
        await _diff(conn, TABLE, _every_row)
        await conn.execute(sa.delete(LIVE))
        names = [c.name for c in LIVE.columns]
        shadow = TABLE.shadow
        await conn.execute(
            sa.insert(LIVE).from_select(names, sa.select(*(shadow.c[n] for n in names)))
        )
        await conn.execute(sa.text(f"DROP TABLE {shadow.name}"))


async def differences(engine: AsyncEngine, shadows: ShadowViews) -> None:
    await shadows.swap(nothing)


STRATEGIES = {"replace": replace, "differences": differences}


async def measure(engine: AsyncEngine, rows: int, case: str, strategy: str) -> dict[str, float]:
    shadows = await prepared(engine, rows, case)
    started = time.perf_counter()
    await STRATEGIES[strategy](engine, shadows)
    swap_s = time.perf_counter() - started
    async with engine.connect() as conn:
        size = (
            await conn.execute(sa.text(f"SELECT pg_total_relation_size('{LIVE.name}')"))
        ).scalar_one()
    return {"swap_s": swap_s, "size_mb": int(size) / 1e6}


async def main(rows: int, runs: int) -> None:
    engine = create_engine(Settings().database)
    try:
        print(
            f"rows={rows:,} runs={runs}, strategies in turn; median seconds the write lock is "
            "held, and the table's size after (MB, indexes included)"
        )
        for case in ("repair", "lost"):
            results: dict[str, list[dict[str, float]]] = {name: [] for name in STRATEGIES}
            for _ in range(runs):
                for name in STRATEGIES:
                    results[name].append(await measure(engine, rows, case, name))
            for name, found in results.items():
                swap_s = statistics.median(r["swap_s"] for r in found)
                spread = (
                    f"{min(r['swap_s'] for r in found):.3f}-{max(r['swap_s'] for r in found):.3f}"
                )
                size_mb = statistics.median(r["size_mb"] for r in found)
                print(f"{case:7} {name:12} lock {swap_s:.3f} s ({spread})  table {size_mb:.1f} MB")
    finally:
        async with engine.begin() as conn:
            await conn.execute(sa.text(f"DROP TABLE IF EXISTS {LIVE.name}"))
            await conn.execute(sa.text(f"DROP TABLE IF EXISTS {TABLE.shadow.name}"))
        await engine.dispose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    asyncio.run(main(args.rows, args.runs))
