"""`scripts.own_database`: a benchmark's database is migrated, its own, and gone afterwards,
also when the run fails."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from scripts.own_database import own_database
from streams.settings import DatabaseSettings, Settings


async def _scalar(database: DatabaseSettings, query: str, **params: object) -> object:
    engine = create_async_engine(database.url.get_secret_value())
    try:
        async with engine.connect() as conn:
            return (await conn.execute(sa.text(query), params)).scalar()
    finally:
        await engine.dispose()


def _name(database: DatabaseSettings) -> str:
    return database.url.get_secret_value().rsplit("/", 1)[1]


async def _exists(database: DatabaseSettings, name: str) -> bool:
    found = await _scalar(database, "SELECT count(*) FROM pg_database WHERE datname = :n", n=name)
    return found == 1


async def test_a_migrated_database_of_its_own_dropped_afterwards(stack_settings: Settings) -> None:
    shared = stack_settings.database
    async with own_database(shared, "tributary_owntest") as own:
        name = _name(own)
        assert name.startswith("tributary_owntest_")
        assert name != _name(shared)
        assert await _exists(shared, name)
        # Migrated: the deliveries table is there, and empty whatever the shared one holds.
        assert await _scalar(own, "SELECT count(*) FROM notification_deliveries") == 0
    assert not await _exists(shared, name)


async def test_dropped_when_the_run_fails(stack_settings: Settings) -> None:
    shared = stack_settings.database
    names: list[str] = []

    async def failing_run() -> None:
        async with own_database(shared, "tributary_owntest") as own:
            names.append(_name(own))
            raise RuntimeError("the run failed")

    with pytest.raises(RuntimeError, match="the run failed"):
        await failing_run()
    assert names
    assert not await _exists(shared, names[0])
