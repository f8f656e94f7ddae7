"""Purging old notifications from the delivery views, in a database of this module's own (a
purge by age reaches every test's rows otherwise): rows and timelines created before the time
go, in batches, the others and the statistics stay."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from streams.settings import DatabaseSettings, Settings
from streams.stores.delivery_store import DeliveryStore
from tests.integration.own_database import own_database
from tests.integration.streams.stores.test_delivery_store import row, step, unique_epoch


@pytest.fixture(scope="module")
def database(stack_settings: Settings) -> Iterator[DatabaseSettings]:
    with own_database(stack_settings.database, "tributary_retention") as database:
        yield database


@pytest.fixture
async def store(database: DatabaseSettings) -> AsyncIterator[DeliveryStore]:
    store = DeliveryStore.from_settings(database)
    yield store
    await store.close()


async def write(store: DeliveryStore, t0: datetime, count: int) -> list[str]:
    """`count` delivered notifications created a second apart from `t0`, two steps each."""
    ids, rows, steps = [], [], []
    for i in range(count):
        n, at = f"n-{uuid.uuid4()}", t0 + timedelta(seconds=i)
        ids.append(n)
        rows.append(row(n, "delivered", at + timedelta(seconds=2), created_at=at, queued_at=at))
        steps += [step(n, "queued", at), step(n, "delivered", at + timedelta(seconds=2))]
    await store.write(rows, steps)
    return ids


async def kept(database: DatabaseSettings, table: str) -> set[str]:
    engine = create_async_engine(database.url.get_secret_value())
    try:
        async with engine.connect() as conn:
            query = sa.text(f"SELECT DISTINCT notification_id FROM {table}")  # noqa: S608
            return {r[0] for r in await conn.execute(query)}
    finally:
        await engine.dispose()


async def test_notifications_created_before_the_time_go_with_their_timelines(
    store: DeliveryStore, database: DatabaseSettings
) -> None:
    t0 = unique_epoch()
    old = await write(store, t0, 7)
    new = await write(store, t0 + timedelta(hours=2), 3)
    hours = (t0, t0 + timedelta(hours=3))
    before = await store.stats(*hours)

    # Batches of 2: four transactions for the seven, the last one short.
    assert await store.purge(t0 + timedelta(hours=1), batch_rows=2) == 7
    assert await kept(database, "notification_deliveries") == set(new)
    assert await kept(database, "notification_transitions") == set(new)
    found = await store.get(old[0])
    assert found is None
    # The statistics are the history of what was purged: the same over whole hours.
    assert await store.stats(*hours) == before
    assert await store.purge(t0 + timedelta(hours=1), batch_rows=2) == 0


async def test_a_purge_skips_rows_another_transaction_holds(
    store: DeliveryStore, database: DatabaseSettings
) -> None:
    """Two workers purging at once share the rows instead of waiting on each other: a row
    locked by one is left to it."""
    t0 = datetime(1980, 1, 1, tzinfo=UTC)  # before every other test's rows, which must stay
    [held, free] = await write(store, t0 - timedelta(days=1), 2)
    engine = create_async_engine(database.url.get_secret_value())
    try:
        async with engine.begin() as conn:
            await conn.execute(
                sa.text(
                    "SELECT 1 FROM notification_deliveries WHERE notification_id = :n FOR UPDATE"
                ),
                {"n": held},
            )
            assert await store.purge(t0, batch_rows=10) == 1
        assert held in await kept(database, "notification_deliveries")
        assert free not in await kept(database, "notification_deliveries")
        assert await store.purge(t0, batch_rows=10) == 1
    finally:
        await engine.dispose()
    assert held not in await kept(database, "notification_transitions")
