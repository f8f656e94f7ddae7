"""A migrated PostgreSQL database of one's own, dropped afterwards: a benchmark's run, or a test
module whose writes reach every row of a table (a replay's swap, a purge by age).

`bench_notifications.py` wrote to the shared `tributary` database and never deleted its rows, so
each run measured what the runs before it had left: on a machine that had run a few hundred
(2.3 M deliveries, 7.9 M timeline rows) PostgreSQL spent 0.59 CPU-s per 1,000 notifications at
400/s, 0.40 on an empty database, the timeline insert taking 32 ms per batch against 7.7. A
figure must not depend on how many benchmarks ran before it, as a test must not see another's
rows.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import sqlalchemy as sa
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import create_async_engine

from streams.migrations import runner as migrate
from streams.settings import DatabaseSettings


async def _admin(url: str, statement: str) -> None:
    """`statement` outside a transaction (CREATE and DROP DATABASE refuse to run in one)."""
    engine = create_async_engine(url, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            await conn.execute(sa.text(statement))
    finally:
        await engine.dispose()


def database_name(prefix: str) -> str:
    """`prefix` and a random suffix: a name no other run or test module uses."""
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


def named(database: DatabaseSettings, name: str) -> DatabaseSettings:
    """`database`'s settings (server, role, pool) on the database `name`."""
    url = database.url.get_secret_value()
    return database.model_copy(update={"url": SecretStr(url.rsplit("/", 1)[0] + "/" + name)})


async def create_database(database: DatabaseSettings, name: str) -> DatabaseSettings:
    """A fresh database `name` on `database`'s server, migrated; its settings."""
    await _admin(database.url.get_secret_value(), f'CREATE DATABASE "{name}"')
    own = named(database, name)
    await asyncio.to_thread(migrate.upgrade, own)
    return own


async def drop_database(database: DatabaseSettings, name: str) -> None:
    """Drop `name`, disconnecting whoever is still connected to it (a child that outlived us)."""
    await _admin(database.url.get_secret_value(), f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@asynccontextmanager
async def own_database(database: DatabaseSettings, prefix: str) -> AsyncIterator[DatabaseSettings]:
    """`database` pointed at a fresh, migrated database (`database_name(prefix)`) for the
    block; dropped afterwards, whatever happened in it."""
    name = database_name(prefix)
    try:
        yield await create_database(database, name)
    finally:
        await drop_database(database, name)
