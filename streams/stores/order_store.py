"""The `order_views` and `order_history` tables in PostgreSQL: written in batches by the worker,
read by the API (one order, a keyset-paginated list, an order's audit trail)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import UUID as PG_UUID
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from schemas.orders import LIFECYCLE_RANK, OrderHistoryEntry, OrderView
from streams.settings import DatabaseSettings
from streams.stores.database import create_engine, translate_database_errors
from streams.stores.order_stats_store import OrderStatsStore

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

order_history = sa.Table(
    "order_history",
    metadata,
    sa.Column("order_id", sa.Text, primary_key=True),
    sa.Column("event_id", PG_UUID(as_uuid=True), primary_key=True),
    sa.Column("event_type", sa.Text, nullable=False),
    sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("ingested_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("source", sa.Text, nullable=False),
    sa.Column("correlation_id", sa.Text, nullable=False),
    sa.Column("causation_id", sa.Text, nullable=True),
    sa.Column("event_status", sa.Text, nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("ignored", sa.Boolean, nullable=False),
    sa.Column(
        "materialized_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    ),
)

_VIEW_COLUMNS = tuple(OrderView.model_fields)
_HISTORY_COLUMNS = tuple(OrderHistoryEntry.model_fields)
# Keyset position of the order list: (created_at, order_id) of the last order of a page.
OrderCursor = tuple[datetime, str]


@dataclass(frozen=True, slots=True)
class OrderFilter:
    """The order list's filters, combined with AND; `created_from` inclusive, `created_to` not."""

    user_id: str | None = None
    status: str | None = None
    created_from: datetime | None = None
    created_to: datetime | None = None


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

    def __init__(
        self,
        engine: AsyncEngine,
        batch_rows: int,
        *,
        views: sa.Table = order_views,
        history: sa.Table = order_history,
    ) -> None:
        """`views` and `history` are other tables of the same columns for a replay's shadow."""
        self._engine = engine
        self._batch_rows = batch_rows
        self._views = views
        self._history = history
        # The closed analytics windows of orders, on the same engine (closed with it).
        self.windows = OrderStatsStore(engine, batch_rows)

    def writing_to(self, views: sa.Table, history: sa.Table) -> OrderStore:
        """A store on the same engine writing to other tables (a replay's shadows)."""
        return OrderStore(self._engine, self._batch_rows, views=views, history=history)

    @classmethod
    def from_settings(cls, database: DatabaseSettings) -> OrderStore:
        return cls(create_engine(database), database.batch_rows)

    async def upsert(
        self, views: Sequence[OrderView], history: Sequence[OrderHistoryEntry] = ()
    ) -> int:
        """Write the views, and the audit trail of the events behind them, in one transaction
        and as few statements as the batch size allows.

        A row is only replaced by a state at least as new, so replaying a topic after a restart,
        or two workers racing through a rebalance, never moves an order back in time. An event
        already in the trail keeps its first row (a replay finds it stale against itself).
        """
        rows = [view.model_dump() for view in latest_per_order(views)]
        trail = _unique_history(history)
        async with translate_database_errors(), self._engine.begin() as conn:
            for start in range(0, len(rows), self._batch_rows):
                chunk = rows[start : start + self._batch_rows]
                await conn.execute(_upsert_statement(self._views, chunk))
            for start in range(0, len(trail), self._batch_rows):
                chunk = trail[start : start + self._batch_rows]
                await conn.execute(insert(self._history).values(chunk).on_conflict_do_nothing())
        return len(rows)

    async def list_orders(
        self, where: OrderFilter, *, limit: int, after: OrderCursor | None = None
    ) -> list[OrderView]:
        """Newest first by (created_at, order_id); `after` is the last order of the previous
        page, so a page never repeats or skips an order however many arrive meanwhile."""
        v = order_views.c
        query = sa.select(*(v[name] for name in _VIEW_COLUMNS))
        if where.user_id is not None:
            query = query.where(v.user_id == where.user_id)
        if where.status is not None:
            query = query.where(v.status == where.status)
        if where.created_from is not None:
            query = query.where(v.created_at >= where.created_from)
        if where.created_to is not None:
            query = query.where(v.created_at < where.created_to)
        if after is not None:
            query = query.where(sa.tuple_(v.created_at, v.order_id) < sa.tuple_(*after))
        query = query.order_by(v.created_at.desc(), v.order_id.desc()).limit(limit)
        async with translate_database_errors(), self._engine.connect() as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [OrderView.model_validate(dict(row)) for row in rows]

    async def history(self, order_id: str) -> list[OrderHistoryEntry]:
        """Every event applied to the order, in event-time order (then lifecycle, then id: the
        order in which the fold ranks them)."""
        h = order_history.c
        query = (
            sa.select(*(h[name] for name in _HISTORY_COLUMNS))
            .where(h.order_id == order_id)
            .order_by(h.occurred_at, _rank(h.event_status), h.event_id)
        )
        async with translate_database_errors(), self._engine.connect() as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [OrderHistoryEntry.model_validate(dict(row)) for row in rows]

    async def get(self, order_id: str) -> OrderView | None:
        query = sa.select(*(order_views.c[name] for name in _VIEW_COLUMNS)).where(
            order_views.c.order_id == order_id
        )
        async with translate_database_errors(), self._engine.connect() as conn:
            row = (await conn.execute(query)).mappings().first()
        return None if row is None else OrderView.model_validate(dict(row))

    async def all_views(self) -> list[OrderView]:
        """Every row of this store's view table (a replay seeds its fold with them)."""
        query = sa.select(*(self._views.c[name] for name in _VIEW_COLUMNS))
        async with translate_database_errors(), self._engine.connect() as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [OrderView.model_validate(dict(row)) for row in rows]

    async def ping(self) -> None:
        async with translate_database_errors(), self._engine.connect() as conn:
            await conn.execute(sa.text("SELECT 1"))

    async def close(self) -> None:
        await self._engine.dispose()


def _unique_history(history: Sequence[OrderHistoryEntry]) -> list[dict[str, Any]]:
    """One row per (order, event), the first seen: one statement may not insert a key twice."""
    first: dict[tuple[str, Any], dict[str, Any]] = {}
    for entry in history:
        first.setdefault((entry.order_id, entry.event_id), entry.model_dump())
    return list(first.values())


def _upsert_statement(table: sa.Table, rows: list[dict[str, Any]]) -> sa.Insert:
    stmt = insert(table).values(rows)
    excluded = stmt.excluded
    changes: dict[str, Any] = {name: excluded[name] for name in _VIEW_COLUMNS if name != "order_id"}
    changes["materialized_at"] = sa.func.now()
    held, offered = table.c, excluded
    return stmt.on_conflict_do_update(
        index_elements=[table.c.order_id],
        set_=changes,
        # `OrderView.version` in SQL: a row comparison over (time, lifecycle rank, event id).
        where=sa.tuple_(held.last_event_at, _rank(held.status), held.last_event_id)
        <= sa.tuple_(offered.last_event_at, _rank(offered.status), offered.last_event_id),
    )


def _rank(status: sa.ColumnElement[Any]) -> sa.ColumnElement[int]:
    return sa.case(LIFECYCLE_RANK, value=status, else_=-1)
