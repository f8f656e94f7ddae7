"""The PostgreSQL boundary: engine construction and translation of driver errors."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from streams.errors import ServiceUnavailableError
from streams.settings import DatabaseSettings

SERVICE = "postgresql"


# PostgreSQL's SQLSTATE for a statement cancelled by `statement_timeout`.
QUERY_CANCELED = "57014"
# SQLSTATE class 40, "transaction rollback": PostgreSQL aborted the transaction to break a
# deadlock (40P01) or a serialization conflict (40001); the same work retried succeeds.
TRANSACTION_ROLLBACK = "40"


def create_engine(database: DatabaseSettings) -> AsyncEngine:
    statement_timeout_ms = round(database.statement_timeout_s * 1000)
    return create_async_engine(
        database.url.get_secret_value(),
        pool_size=database.pool_size,
        max_overflow=database.max_overflow,
        pool_timeout=database.pool_timeout_s,
        pool_pre_ping=True,
        connect_args={
            "timeout": database.connect_timeout_s,
            "server_settings": {"statement_timeout": str(statement_timeout_ms)},
        },
    )


@asynccontextmanager
async def translate_database_errors() -> AsyncIterator[None]:
    """Connection-level failures and transactions PostgreSQL rolled back (a deadlock, a
    serialization conflict) become `ServiceUnavailableError`, which callers retry; a bug in a
    statement (a programming error) is left to surface as it is."""
    try:
        yield
    except sa_exc.TimeoutError as exc:  # every pooled connection in use for pool_timeout_s
        raise ServiceUnavailableError(SERVICE, f"no free connection: {exc}") from exc
    except (sa_exc.OperationalError, sa_exc.InterfaceError) as exc:
        raise ServiceUnavailableError(SERVICE, str(exc.orig or exc)) from exc
    except sa_exc.DBAPIError as exc:
        sqlstate = _sqlstate(exc) or ""
        if (
            exc.connection_invalidated
            or sqlstate == QUERY_CANCELED
            or sqlstate.startswith(TRANSACTION_ROLLBACK)
        ):
            raise ServiceUnavailableError(SERVICE, str(exc.orig or exc)) from exc
        raise
    except (TimeoutError, OSError) as exc:
        raise ServiceUnavailableError(SERVICE, repr(exc)) from exc


def _sqlstate(exc: sa_exc.DBAPIError) -> str | None:
    """The SQLSTATE of the driver's error (asyncpg's, under SQLAlchemy's adapter)."""
    orig = exc.orig
    code = getattr(orig, "sqlstate", None) or getattr(
        getattr(orig, "__cause__", None), "sqlstate", None
    )
    return code if isinstance(code, str) else None
