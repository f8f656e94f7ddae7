"""`tributary stats rebuild` against the real PostgreSQL: rows the rollups missed (written as a
worker of a version before migration 0009 writes them, without the rollups) are counted once
rebuilt; the hours around the range only; the counts already right stay right."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import sqlalchemy as sa

from streams.settings import Settings
from streams.stores.database import create_engine
from streams.stores.delivery_store import DeliveryStore, notification_deliveries
from tests.integration.cli.support import cli
from tests.integration.streams.stores.test_delivery_store import ROW_COLUMNS, row, unique_epoch


async def test_rows_the_rollups_missed_are_counted_once_rebuilt(settings: Settings) -> None:
    t0 = unique_epoch()
    store = DeliveryStore.from_settings(settings.database)
    engine = create_engine(settings.database)
    try:
        counted = [row(f"n-{uuid.uuid4()}", "delivered", t0 + timedelta(minutes=m)) for m in (1, 2)]
        await store.write(counted, [])
        # An earlier version's worker: the row, not the rollups.
        missed = row(f"n-{uuid.uuid4()}", "failed", t0 + timedelta(minutes=70))
        async with engine.begin() as conn:
            await conn.execute(
                sa.insert(notification_deliveries).values(
                    dict(zip(ROW_COLUMNS, missed, strict=True))
                )
            )
        elsewhere = t0 + timedelta(hours=5)
        await store.write([row(f"n-{uuid.uuid4()}", "delivered", elsewhere)], [])
        hours = (t0, t0 + timedelta(hours=2))

        def totals(groups: list[Any]) -> tuple[int, int, int]:
            [overall] = [g for g in groups if g.scope == "all"]
            return overall.total, overall.delivered, overall.failed

        assert totals(await store.stats(*hours)) == (2, 2, 0)

        since = (t0 + timedelta(minutes=30)).isoformat()
        until = (t0 + timedelta(minutes=80)).isoformat()
        rebuilt = await cli(settings, "stats", "rebuild", "--since", since, "--until", until)
        assert rebuilt.code == 0, rebuilt.stderr
        # The whole hours around the range: both of them, three notifications.
        assert rebuilt.lines == [
            {"from": t0.isoformat(), "to": hours[1].isoformat(), "notifications": 3}
        ]
        assert totals(await store.stats(*hours)) == (3, 2, 1)
        assert totals(await store.stats(elsewhere, elsewhere + timedelta(hours=1))) == (1, 1, 0)

        backwards = await cli(settings, "stats", "rebuild", "--since", until, "--until", since)
        assert backwards.code == 2
        assert "--since must be before" in backwards.stderr
    finally:
        await store.close()
        await engine.dispose()
