"""The `provider_breakers` table: each worker's latest report of each provider's circuit breaker.

Written in batches by the worker's materializer (`agents.providers`), from the compacted
`notifications.providers` topic; read by the API's `/v1/providers`. A row is only replaced by a
report at least as new, so a replayed topic never moves a breaker back.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from schemas.providers import BreakerReport
from streams.settings import DatabaseSettings
from streams.stores.database import create_engine, translate_database_errors

metadata = sa.MetaData()


def _tz() -> sa.DateTime:
    return sa.DateTime(timezone=True)


provider_breakers = sa.Table(
    "provider_breakers",
    metadata,
    sa.Column("provider", sa.Text, primary_key=True),
    sa.Column("worker", sa.Text, primary_key=True),
    sa.Column("state", sa.Text, nullable=False),
    sa.Column("consecutive_failures", sa.Integer, nullable=False),
    sa.Column("requests_in_window", sa.Integer, nullable=False),
    sa.Column("last_error", sa.Text, nullable=True),
    sa.Column("last_error_at", _tz(), nullable=True),
    sa.Column("opened_at", _tz(), nullable=True),
    sa.Column("times_opened", sa.Integer, nullable=False),
    sa.Column("reported_at", _tz(), nullable=False),
    sa.Column("expires_at", _tz(), nullable=False),
    sa.Column("materialized_at", _tz(), nullable=False, server_default=sa.func.now()),
)

_COLUMNS = tuple(BreakerReport.model_fields)
_KEY = ("provider", "worker")


class ProviderStore:
    def __init__(self, engine: AsyncEngine, batch_rows: int) -> None:
        self._engine = engine
        self._batch_rows = batch_rows

    @classmethod
    def from_settings(cls, database: DatabaseSettings) -> ProviderStore:
        return cls(create_engine(database), database.batch_rows)

    async def write(self, reports: Sequence[BreakerReport]) -> int:
        """Upsert the reports in one transaction (one per provider and worker, the caller's
        latest); returns how many were offered."""
        rows = [report.model_dump() for report in reports]
        async with translate_database_errors(), self._engine.begin() as conn:
            for start in range(0, len(rows), self._batch_rows):
                await conn.execute(_UPSERT, rows[start : start + self._batch_rows])
        return len(rows)

    async def reports(self) -> list[BreakerReport]:
        """Every worker's latest report of every provider, expired ones included (the caller
        decides what counts), by provider then worker."""
        c = provider_breakers.c
        query = sa.select(*(c[name] for name in _COLUMNS)).order_by(c.provider, c.worker)
        async with translate_database_errors(), self._engine.connect() as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [BreakerReport.model_validate(dict(row)) for row in rows]

    async def close(self) -> None:
        await self._engine.dispose()


def _upsert_statement() -> sa.Insert:
    """One statement for every batch, its rows passed as parameters (as the preferences view's):
    a `.values(rows)` insert is a new statement for every number of rows, compiled again each
    time."""
    stmt = insert(provider_breakers)
    updated = (name for name in _COLUMNS if name not in _KEY)
    changes: dict[str, object] = {name: stmt.excluded[name] for name in updated}
    changes["materialized_at"] = sa.func.now()
    return stmt.on_conflict_do_update(
        index_elements=list(_KEY),
        set_=changes,
        where=provider_breakers.c.reported_at <= stmt.excluded.reported_at,
    )


_UPSERT = _upsert_statement()
