"""Alembic environment: runs migrations over the async engine built from `Settings`."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection

from streams.settings import Settings
from streams.stores.database import create_engine
from streams.stores.order_store import metadata

target_metadata = metadata


def _run(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=target_metadata)
    with context.begin_transaction():
        context.run_migrations()


async def _run_online(settings: Settings) -> None:
    engine = create_engine(settings)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run)
            await connection.commit()
    finally:
        await engine.dispose()


def _settings() -> Settings:
    configured = context.config.attributes.get("settings")
    return configured if isinstance(configured, Settings) else Settings()


if context.is_offline_mode():
    context.configure(url=_settings().database.url.get_secret_value(), literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    asyncio.run(_run_online(_settings()))
