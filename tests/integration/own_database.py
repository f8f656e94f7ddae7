"""A migrated PostgreSQL database of a test module's own, for tests whose writes reach every row
of a table (a replay's swap, a purge by age), which other tests share otherwise."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import sqlalchemy as sa
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import create_async_engine

from streams.migrations import runner as migrate
from streams.settings import DatabaseSettings
from tests.integration.conftest import _run_in_thread


async def _admin(url: str, statement: str) -> None:
    engine = create_async_engine(url, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            await conn.execute(sa.text(statement))
    finally:
        await engine.dispose()


@contextmanager
def own_database(database: DatabaseSettings, prefix: str) -> Iterator[DatabaseSettings]:
    """`database` pointed at a fresh database (`prefix` and a random suffix), migrated; dropped
    afterwards."""
    url = database.url.get_secret_value()
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    _run_in_thread(_admin(url, f'CREATE DATABASE "{name}"'))
    try:
        own = database.model_copy(update={"url": SecretStr(url.rsplit("/", 1)[0] + "/" + name)})
        with ThreadPoolExecutor(max_workers=1) as pool:
            pool.submit(migrate.upgrade, own).result()
        yield own
    finally:
        _run_in_thread(_admin(url, f'DROP DATABASE "{name}" WITH (FORCE)'))
