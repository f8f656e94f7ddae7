"""The PostgreSQL boundary: engine construction and translation of driver errors."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from streams.errors import ServiceUnavailableError
from streams.settings import DatabaseSettings

SERVICE = "postgresql"


def create_engine(database: DatabaseSettings) -> AsyncEngine:
    return create_async_engine(
        database.url.get_secret_value(),
        pool_size=database.pool_size,
        pool_pre_ping=True,
        connect_args={"timeout": database.connect_timeout_s},
    )


@asynccontextmanager
async def translate_database_errors() -> AsyncIterator[None]:
    """Connection-level failures become `ServiceUnavailableError`; a bug in a statement (a
    programming error) is left to surface as it is."""
    try:
        yield
    except (sa_exc.OperationalError, sa_exc.InterfaceError) as exc:
        raise ServiceUnavailableError(SERVICE, str(exc.orig or exc)) from exc
    except sa_exc.DBAPIError as exc:
        if exc.connection_invalidated:
            raise ServiceUnavailableError(SERVICE, str(exc.orig or exc)) from exc
        raise
    except (TimeoutError, OSError) as exc:
        raise ServiceUnavailableError(SERVICE, repr(exc)) from exc
