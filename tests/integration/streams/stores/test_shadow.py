"""Shadow tables against the real PostgreSQL: the swap writes only the differences (rows left as
they were keep their tuple), counts them as the read-only diff does, and a scoped swap touches
only its keys. Each test works on a table of its own (the columns of `user_devices`)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from streams.settings import Settings
from streams.stores.database import create_engine
from streams.stores.session_store import user_devices
from streams.stores.shadow import KeyScope, ShadowTable, ShadowViews

T0 = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)


def device(user_id: str, device_id: str, **changes: Any) -> dict[str, Any]:
    return {
        "user_id": user_id,
        "device_id": device_id,
        "first_seen_at": T0,
        "last_seen_at": T0,
        "last_ip": "203.0.113.7",
        "user_agent": None,
        "country": None,
        "login_count": 1,
        "first_event_id": uuid.UUID(int=1),
        "flagged": False,
        "revision": 1,
    } | changes


@pytest.fixture
async def engine(stack_settings: Settings) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(stack_settings.database)
    yield engine
    await engine.dispose()


@pytest.fixture
async def table(engine: AsyncEngine) -> AsyncIterator[ShadowTable]:
    live = user_devices.to_metadata(sa.MetaData(), name=f"shadow_test_{uuid.uuid4().hex[:10]}")
    async with engine.begin() as conn:
        await conn.run_sync(lambda sync: live.create(sync))
    yield ShadowTable(live, ("user_id", "device_id"))
    async with engine.begin() as conn:
        await conn.execute(sa.text(f'DROP TABLE IF EXISTS "{live.name}"'))
        await conn.execute(sa.text(f'DROP TABLE IF EXISTS "{live.name}__replay"'))


async def fill(engine: AsyncEngine, target: sa.Table, rows: list[dict[str, Any]]) -> None:
    if rows:
        async with engine.begin() as conn:
            await conn.execute(sa.insert(target), rows)


async def contents(engine: AsyncEngine, target: sa.Table) -> dict[tuple[str, str], Any]:
    """Per key: the row's values but its write time, and its tuple's transaction (`xmin`)."""
    query = sa.select(target, sa.literal_column("xmin::text").label("xmin"))
    async with engine.connect() as conn:
        found = (await conn.execute(query)).mappings().all()
    return {
        (row["user_id"], row["device_id"]): {k: v for k, v in row.items() if k != "materialized_at"}
        for row in found
    }


async def nothing() -> None:
    return None


async def test_a_swap_writes_only_the_rows_that_differ_and_counts_them(
    engine: AsyncEngine, table: ShadowTable
) -> None:
    later = datetime.now(UTC) + timedelta(days=1)
    await fill(
        engine,
        table.live,
        [
            device("u1", "same"),
            device("u1", "changed"),
            device("u1", "removed"),
            device("u1", "written-later"),
        ],
    )
    shadows = ShadowViews(engine, [table])
    await shadows.prepare()
    await fill(
        engine,
        table.shadow,
        [
            device("u1", "same"),
            device("u1", "changed", login_count=2, revision=2),
            device("u1", "written-later", materialized_at=later),  # ignored: not a change
            device("u1", "added"),
        ],
    )
    before = await contents(engine, table.live)
    [dry] = await shadows.diff()

    [diff] = await shadows.swap(nothing)

    assert diff == dry
    assert (diff.added, diff.changed, diff.removed) == (1, 1, 1)
    assert (diff.live_rows, diff.replayed_rows) == (4, 4)
    assert diff.examples == {
        "added": [["u1", "added"]],
        "changed": [["u1", "changed"]],
        "removed": [["u1", "removed"]],
    }
    after = await contents(engine, table.live)
    assert set(after) == {("u1", k) for k in ("same", "changed", "written-later", "added")}
    assert after[("u1", "changed")]["login_count"] == 2
    # Left as they were: the very same tuples, not rewritten.
    for key in (("u1", "same"), ("u1", "written-later")):
        assert after[key] == before[key]
    assert after[("u1", "changed")]["xmin"] != before[("u1", "changed")]["xmin"]


async def test_a_scoped_swap_touches_only_the_rows_of_its_keys(
    engine: AsyncEngine, table: ShadowTable
) -> None:
    await fill(
        engine,
        table.live,
        [device("u1", "stray"), device("u1", "kept", login_count=9), device("u2", "other")],
    )
    shadows = ShadowViews(engine, [table], KeyScope("user_id", {"u1", "u3"}))
    await shadows.prepare()
    await fill(engine, table.shadow, [device("u1", "kept"), device("u3", "new")])
    [dry] = await shadows.diff()

    [diff] = await shadows.swap(nothing)

    assert diff == dry
    assert (diff.added, diff.changed, diff.removed, diff.live_rows) == (1, 1, 1, 2)
    after = await contents(engine, table.live)
    assert set(after) == {("u1", "kept"), ("u2", "other"), ("u3", "new")}
    assert after[("u1", "kept")]["login_count"] == 1


async def test_a_swap_into_an_empty_table_adds_every_row(
    engine: AsyncEngine, table: ShadowTable
) -> None:
    shadows = ShadowViews(engine, [table])
    await shadows.prepare()
    rows = [device(f"u{n // 3}", f"d{n % 3}") for n in range(3000)]
    await fill(engine, table.shadow, rows)

    [diff] = await shadows.swap(nothing)

    assert (diff.added, diff.changed, diff.removed, diff.replayed_rows) == (3000, 0, 0, 3000)
    assert len(await contents(engine, table.live)) == 3000
