"""The `notification_suppressions` table: the suppressed addresses the router keeps per user,
written in batches by the worker (`route_notifications`), read by the API.

A batch replaces the rows of every user it touched (a report, a lift, a deletion) with the
user's current suppressed addresses: one DELETE and one INSERT per batch, in one transaction.
Writing the current state rather than the change makes a replay harmless: a batch processed
again after a crash writes the same rows again.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict
from sqlalchemy.ext.asyncio import AsyncEngine

from streams.settings import DatabaseSettings
from streams.stores.database import create_engine, translate_database_errors

metadata = sa.MetaData()
_TZ = sa.DateTime(timezone=True)

notification_suppressions = sa.Table(
    "notification_suppressions",
    metadata,
    sa.Column("suppression_id", sa.Text, primary_key=True),
    sa.Column("channel", sa.Text, nullable=False),
    sa.Column("address", sa.Text, nullable=False),
    sa.Column("user_id", sa.Text, nullable=False),
    sa.Column("kind", sa.Text, nullable=False),
    sa.Column("reason", sa.Text),
    sa.Column("notification_id", sa.Text),
    sa.Column("suppressed_at", _TZ, nullable=False),
    sa.Column("soft_bounces", sa.Integer, nullable=False),
    sa.Column("materialized_at", _TZ, nullable=False, server_default=sa.func.now()),
)


def suppression_id(channel: str, address: str, user_id: str) -> str:
    """A short stable id of (channel, address, user): the row's key and its page cursor (an
    address may be a 4 KB push token, too long for a cursor)."""
    digest = hashlib.sha256(f"{channel}\x1f{address}\x1f{user_id}".encode()).hexdigest()
    return digest[:32]


class SuppressionRow(BaseModel):
    """One suppressed address of one user, as materialized (and served)."""

    model_config = ConfigDict(frozen=True)

    suppression_id: str
    channel: str
    address: str
    user_id: str
    kind: str
    reason: str | None
    notification_id: str | None
    suppressed_at: datetime
    soft_bounces: int


_COLUMNS = tuple(SuppressionRow.model_fields)
# (suppressed_at, suppression_id) of the last row of a page: where the next page starts.
Cursor = tuple[datetime, str]


class SuppressionStore:
    def __init__(self, engine: AsyncEngine, batch_rows: int) -> None:
        self._engine = engine
        self._batch_rows = batch_rows

    @classmethod
    def from_settings(cls, database: DatabaseSettings) -> SuppressionStore:
        return cls(create_engine(database), database.batch_rows)

    async def replace(self, user_ids: Sequence[str], rows: Sequence[SuppressionRow]) -> int:
        """The rows of `user_ids` become `rows` (every row's user is among them); rows written."""
        t = notification_suppressions
        values = [row.model_dump() for row in rows]
        async with translate_database_errors(), self._engine.begin() as conn:
            for start in range(0, len(user_ids), self._batch_rows):
                chunk = list(user_ids[start : start + self._batch_rows])
                await conn.execute(sa.delete(t).where(t.c.user_id.in_(chunk)))
            for start in range(0, len(values), self._batch_rows):
                await conn.execute(sa.insert(t), values[start : start + self._batch_rows])
        return len(values)

    async def page(
        self,
        *,
        channel: str | None,
        address: str | None,
        limit: int,
        after: Cursor | None = None,
    ) -> list[SuppressionRow]:
        """Most recently suppressed first; `after` is the cursor of the previous page."""
        t = notification_suppressions
        query = sa.select(*(t.c[name] for name in _COLUMNS))
        if channel is not None:
            query = query.where(t.c.channel == channel)
        if address is not None:
            query = query.where(t.c.address == address)
        if after is not None:
            at, key = after
            query = query.where(
                sa.or_(
                    t.c.suppressed_at < at,
                    sa.and_(t.c.suppressed_at == at, t.c.suppression_id < key),
                )
            )
        query = query.order_by(t.c.suppressed_at.desc(), t.c.suppression_id.desc()).limit(limit)
        async with translate_database_errors(), self._engine.connect() as conn:
            found = (await conn.execute(query)).mappings().all()
        return [SuppressionRow.model_validate(dict(row)) for row in found]

    async def users_for(self, channel: str, address: str) -> list[str]:
        """The users whose suppressions hold `address` on `channel`."""
        t = notification_suppressions
        query = (
            sa.select(t.c.user_id)
            .where(t.c.channel == channel, t.c.address == address)
            .order_by(t.c.user_id)
        )
        async with translate_database_errors(), self._engine.connect() as conn:
            return list((await conn.execute(query)).scalars().all())

    async def close(self) -> None:
        await self._engine.dispose()
