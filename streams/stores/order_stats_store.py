"""The `order_window_stats` table: closed tumbling windows of `analytics.orders`, one row per
window and currency, written in batches by the worker and summed by the API.

Order statistics are computed from these rows, not by scanning `order_views`: a window's
counters are final once it closed, so a range is a sum over few rows whatever the order volume.
Only tumbling windows are kept: hopping ones overlap, and summing them would count events twice.
A range covers the windows that lie wholly inside it, so its answer names the span it covers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from schemas.analytics import OrdersWindow
from streams.stores.database import translate_database_errors

metadata = sa.MetaData()

order_window_stats = sa.Table(
    "order_window_stats",
    metadata,
    sa.Column("kind", sa.Text, primary_key=True),
    sa.Column("window_size_s", sa.Integer, primary_key=True),
    sa.Column("window_start", sa.DateTime(timezone=True), primary_key=True),
    sa.Column("currency", sa.String(3), primary_key=True),
    sa.Column("window_end", sa.DateTime(timezone=True), nullable=False),
    sa.Column("events", sa.BigInteger, nullable=False),
    sa.Column("orders_created", sa.BigInteger, nullable=False),
    sa.Column("orders_paid", sa.BigInteger, nullable=False),
    sa.Column("revenue_minor", sa.BigInteger, nullable=False),
    sa.Column("cancellations", sa.BigInteger, nullable=False),
    sa.Column("refunds", sa.BigInteger, nullable=False),
    sa.Column("refunded_minor", sa.BigInteger, nullable=False),
    sa.Column(
        "materialized_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    ),
)

_KEY = ("kind", "window_size_s", "window_start", "currency")
_COUNTERS = (
    "events",
    "orders_created",
    "orders_paid",
    "revenue_minor",
    "cancellations",
    "refunds",
    "refunded_minor",
)
TUMBLING = "tumbling"


@dataclass(frozen=True, slots=True)
class CurrencyStats:
    """Sums over the closed windows of one currency; the average is revenue per paid order."""

    currency: str
    windows: int
    covered_from: datetime
    covered_to: datetime
    events: int
    orders_created: int
    orders_paid: int
    revenue_minor: int
    cancellations: int
    refunds: int
    refunded_minor: int

    @property
    def average_order_value_minor(self) -> int | None:
        return self.revenue_minor // self.orders_paid if self.orders_paid else None


def window_row(window: OrdersWindow) -> dict[str, Any]:
    row = {name: getattr(window, name) for name in _KEY if name != "window_start"}
    row["window_start"] = window.window_start
    row["window_end"] = window.window_end
    row.update({name: getattr(window, name) for name in _COUNTERS})
    return row


class OrderStatsStore:
    """Batched, idempotent writes of closed windows and range sums over them. Shares the
    engine of the order store, which owns (and disposes of) it."""

    def __init__(self, engine: AsyncEngine, batch_rows: int) -> None:
        self._engine = engine
        self._batch_rows = batch_rows

    async def upsert(self, windows: Sequence[OrdersWindow]) -> int:
        """Write the tumbling windows (others are skipped); a window published again after a
        crash carries the same values and replaces its row."""
        unique = {
            (w.kind, w.window_size_s, w.window_start, w.currency): window_row(w)
            for w in windows
            if w.kind == TUMBLING
        }
        rows = list(unique.values())
        async with translate_database_errors(), self._engine.begin() as conn:
            for start in range(0, len(rows), self._batch_rows):
                stmt = insert(order_window_stats).values(rows[start : start + self._batch_rows])
                changes: dict[str, Any] = {name: stmt.excluded[name] for name in _COUNTERS}
                changes["window_end"] = stmt.excluded.window_end
                changes["materialized_at"] = sa.func.now()
                await conn.execute(
                    stmt.on_conflict_do_update(index_elements=list(_KEY), set_=changes)
                )
        return len(rows)

    async def totals(
        self, start: datetime, end: datetime, currency: str | None = None
    ) -> list[CurrencyStats]:
        """Per currency, the sums over the windows lying wholly in [start, end)."""
        s = order_window_stats.c
        query = (
            sa.select(
                s.currency,
                sa.func.count().label("windows"),
                sa.func.min(s.window_start).label("covered_from"),
                sa.func.max(s.window_end).label("covered_to"),
                *(sa.func.sum(s[name]).label(name) for name in _COUNTERS),
            )
            .where(s.kind == TUMBLING, s.window_start >= start, s.window_end <= end)
            .group_by(s.currency)
            .order_by(s.currency)
        )
        if currency is not None:
            query = query.where(s.currency == currency)
        async with translate_database_errors(), self._engine.connect() as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [
            CurrencyStats(
                currency=row["currency"],
                windows=int(row["windows"]),
                covered_from=row["covered_from"],
                covered_to=row["covered_to"],
                **{name: int(row[name]) for name in _COUNTERS},
            )
            for row in rows
        ]
