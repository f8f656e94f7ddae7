"""The `order_views` table in PostgreSQL: written in batches by the worker, read by the API."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import UUID as PG_UUID
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from schemas.orders import LIFECYCLE_RANK, OrderView
from streams.settings import DatabaseSettings
from streams.stores.database import create_engine, translate_database_errors

metadata = sa.MetaData()

order_views = sa.Table(
    "order_views",
    metadata,
    sa.Column("order_id", sa.Text, primary_key=True),
    sa.Column("user_id", sa.Text, nullable=False, index=True),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("total_minor", sa.BigInteger, nullable=False),
    sa.Column("item_count", sa.Integer, nullable=False),
    sa.Column("last_event_id", PG_UUID(as_uuid=True), nullable=False),
    sa.Column("last_event_type", sa.Text, nullable=False),
    sa.Column("last_event_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column(
        "materialized_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    ),
)

_VIEW_COLUMNS = tuple(OrderView.model_fields)


def latest_per_order(views: Iterable[OrderView]) -> list[OrderView]:
    """One view per order, the highest version: PostgreSQL refuses to upsert the same key twice
    in one statement, and only the newest state of a batch matters.

    On equal versions the later view in the sequence wins (it may carry an earlier `created_at`).
    Orders keep the order in which they were first seen, which keeps batches deterministic.
    """
    latest: dict[str, OrderView] = {}
    for view in views:
        held = latest.get(view.order_id)
        if held is None or view.version >= held.version:
            latest[view.order_id] = view
    return list(latest.values())


class OrderStore:
    """Batched, idempotent writes and point reads of the order view."""

    def __init__(self, engine: AsyncEngine, batch_rows: int) -> None:
        self._engine = engine
        self._batch_rows = batch_rows

    @classmethod
    def from_settings(cls, database: DatabaseSettings) -> OrderStore:
        return cls(create_engine(database), database.batch_rows)

    async def upsert(self, views: Sequence[OrderView]) -> int:
        """Write the views in as few statements as the batch size allows.

        A row is only replaced by a state at least as new, so replaying a topic after a restart,
        or two workers racing through a rebalance, never moves an order back in time.
        """
        rows = [view.model_dump() for view in latest_per_order(views)]
        async with translate_database_errors(), self._engine.begin() as conn:
            for start in range(0, len(rows), self._batch_rows):
                await conn.execute(_upsert_statement(rows[start : start + self._batch_rows]))
        return len(rows)

    async def get(self, order_id: str) -> OrderView | None:
        query = sa.select(*(order_views.c[name] for name in _VIEW_COLUMNS)).where(
            order_views.c.order_id == order_id
        )
        async with translate_database_errors(), self._engine.connect() as conn:
            row = (await conn.execute(query)).mappings().first()
        return None if row is None else OrderView.model_validate(dict(row))

    async def ping(self) -> None:
        async with translate_database_errors(), self._engine.connect() as conn:
            await conn.execute(sa.text("SELECT 1"))

    async def close(self) -> None:
        await self._engine.dispose()


def _upsert_statement(rows: list[dict[str, Any]]) -> sa.Insert:
    stmt = insert(order_views).values(rows)
    excluded = stmt.excluded
    changes: dict[str, Any] = {name: excluded[name] for name in _VIEW_COLUMNS if name != "order_id"}
    changes["materialized_at"] = sa.func.now()
    held, offered = order_views.c, excluded
    return stmt.on_conflict_do_update(
        index_elements=[order_views.c.order_id],
        set_=changes,
        # `OrderView.version` in SQL: a row comparison over (time, lifecycle rank, event id).
        where=sa.tuple_(held.last_event_at, _rank(held.status), held.last_event_id)
        <= sa.tuple_(offered.last_event_at, _rank(offered.status), offered.last_event_id),
    )


def _rank(status: sa.ColumnElement[Any]) -> sa.ColumnElement[int]:
    return sa.case(LIFECYCLE_RANK, value=status, else_=-1)
