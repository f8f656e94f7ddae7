"""Alembic environment: runs migrations over the async engine built from the database settings."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection

from streams.settings import DatabaseSettings, MigrationsProcessSettings
from streams.stores.database import create_engine
from streams.stores.order_store import metadata

target_metadata = metadata


def _run(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=target_metadata)
    with context.begin_transaction():
        context.run_migrations()


async def _run_online(database: DatabaseSettings) -> None:
    engine = create_engine(database)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run)
            await connection.commit()
    finally:
        await engine.dispose()


def _database() -> DatabaseSettings:
    """What `streams.migrations.runner` passed, else (the `alembic` command) the environment's."""
    configured = context.config.attributes.get("database")
    if isinstance(configured, DatabaseSettings):
        return configured
    return MigrationsProcessSettings().database


if context.is_offline_mode():
    context.configure(url=_database().url.get_secret_value(), literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    asyncio.run(_run_online(_database()))
