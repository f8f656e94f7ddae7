"""Notification deliveries in PostgreSQL: current state + timeline, written in batches, read by
the API (one notification, a user's list, delivery statistics).

Writes come from `track_deliveries`: per batch one upsert of the current states and one insert of
the new timeline rows, in one transaction. Replays are harmless: a row is only replaced by a state
of at least the same precedence and time (`state_rank`, `state_at`), the accumulated columns only
ever grow (earliest times, highest attempt), and a timeline row is unique per
(notification, state, time).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple
from uuid import UUID

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, field_validator
from sqlalchemy.dialects.postgresql import UUID as PG_UUID
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from streams.redaction import redact
from streams.settings import DatabaseSettings
from streams.stores.database import create_engine, translate_database_errors
from streams.stores.delivery_retention import purge_deliveries
from streams.stores.delivery_rollups import (
    CHANGE_COLUMNS,
    Rebuilt,
    add_sql,
    long_form_params,
    long_form_sql,
    notification_stats_hours,
    notification_stats_minutes,
    rebuild,
)
from streams.stores.delivery_statistics import DeliveryStats, groups, read_tallies

metadata = sa.MetaData()
_TZ = sa.DateTime(timezone=True)

notification_deliveries = sa.Table(
    "notification_deliveries",
    metadata,
    sa.Column("notification_id", sa.Text, primary_key=True),
    sa.Column("user_id", sa.Text),
    sa.Column("channel", sa.Text),
    sa.Column("category", sa.Text),
    sa.Column("template", sa.Text),
    sa.Column("state", sa.Text, nullable=False),
    sa.Column("state_rank", sa.SmallInteger, nullable=False),
    sa.Column("state_at", _TZ, nullable=False),
    sa.Column("reason", sa.Text),
    sa.Column("last_error", sa.Text),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("provider", sa.Text),
    sa.Column("provider_message_id", sa.Text),
    sa.Column("caused_at", _TZ),
    sa.Column("queued_at", _TZ),
    sa.Column("delivered_at", _TZ),
    sa.Column("created_at", _TZ, nullable=False),
    sa.Column("updated_at", _TZ, nullable=False),
    sa.Column("materialized_at", _TZ, nullable=False, server_default=sa.func.now()),
)

notification_transitions = sa.Table(
    "notification_transitions",
    metadata,
    sa.Column("notification_id", sa.Text, nullable=False),
    sa.Column("state", sa.Text, nullable=False),
    sa.Column("occurred_at", _TZ, nullable=False),
    sa.Column("reason", sa.Text),
    sa.Column("attempt", sa.Integer),
    sa.Column("provider", sa.Text),
    sa.Column("provider_message_id", sa.Text),
    sa.Column("event_id", PG_UUID(as_uuid=True), nullable=False),
    sa.UniqueConstraint("notification_id", "state", "occurred_at", name="uq_transition"),
)


class DeliveryRow(BaseModel):
    """The current state of one notification, as read back (and served)."""

    model_config = ConfigDict(frozen=True)

    notification_id: str
    user_id: str | None
    channel: str | None
    category: str | None
    template: str | None
    state: str
    state_rank: int
    state_at: datetime
    reason: str | None
    last_error: str | None
    attempts: int
    provider: str | None
    provider_message_id: str | None
    caused_at: datetime | None
    queued_at: datetime | None
    delivered_at: datetime | None
    created_at: datetime
    updated_at: datetime

    # Provider error text without recipients (`streams.redaction`): the store redacts what it
    # writes, and rows written before redaction existed are redacted as they are read.
    _redacted = field_validator("reason", "last_error")(redact)


class TransitionRow(BaseModel):
    model_config = ConfigDict(frozen=True)

    notification_id: str
    state: str
    occurred_at: datetime
    reason: str | None = None
    attempt: int | None = None
    provider: str | None = None
    provider_message_id: str | None = None
    event_id: UUID

    _redacted = field_validator("reason")(redact)


class DeliveryValues(NamedTuple):
    """One notification's current state to write: `DeliveryRow`'s columns as a plain tuple.

    The tracker writes several per notification; a validated model and its dump cost ~5 µs
    per row, a tuple under one, and a batch of tuples turns into the statement's one array per
    column by `zip`. The store redacts the provider texts (`reason`, `last_error`) as it writes.
    """

    notification_id: str
    user_id: str | None
    channel: str | None
    category: str | None
    template: str | None
    state: str
    state_rank: int
    state_at: datetime
    reason: str | None
    last_error: str | None
    attempts: int
    provider: str | None
    provider_message_id: str | None
    caused_at: datetime | None
    queued_at: datetime | None
    delivered_at: datetime | None
    created_at: datetime
    updated_at: datetime


class TransitionValues(NamedTuple):
    """One timeline step to write: `TransitionRow`'s columns as a plain tuple (see
    `DeliveryValues`); its `reason` is redacted as it is written."""

    notification_id: str
    state: str
    occurred_at: datetime
    reason: str | None
    attempt: int | None
    provider: str | None
    provider_message_id: str | None
    event_id: UUID


_ROW_COLUMNS = DeliveryValues._fields
_TRANSITION_COLUMNS = TransitionValues._fields
# Columns holding a provider's own text, which may name the recipient (`streams.redaction`).
_ROW_TEXTS = ("reason", "last_error")
_TRANSITION_TEXTS = ("reason",)
# (created_at, notification_id) of the last row of a page: where the next page starts.
Cursor = tuple[datetime, str]


class DeliveryStore:
    def __init__(
        self,
        engine: AsyncEngine,
        batch_rows: int,
        *,
        deliveries: sa.Table = notification_deliveries,
        transitions: sa.Table = notification_transitions,
        minutes: sa.Table = notification_stats_minutes,
        hours: sa.Table = notification_stats_hours,
    ) -> None:
        """`deliveries`, `transitions` and the statistics' `minutes` and `hours`: other tables
        of the same columns (a replay's shadows) to write to instead of the live ones."""
        self._engine = engine
        self._batch_rows = batch_rows
        self._deliveries = deliveries
        self._transitions = transitions
        self._upsert = _upsert_sql(deliveries)
        self._insert_steps = _insert_steps_sql(transitions)
        self._add_minutes = add_sql(minutes, "minute")
        self._add_hours = add_sql(hours, "hour")

    def writing_to(self, *tables: sa.Table) -> DeliveryStore:
        """A store on the same engine writing to other tables (a replay's shadows): the
        deliveries, transitions, minutes and hours, in that order."""
        deliveries, transitions, minutes, hours = tables
        return DeliveryStore(
            self._engine,
            self._batch_rows,
            deliveries=deliveries,
            transitions=transitions,
            minutes=minutes,
            hours=hours,
        )

    @classmethod
    def from_settings(cls, database: DatabaseSettings) -> DeliveryStore:
        return cls(create_engine(database), database.batch_rows)

    async def write(
        self, deliveries: Sequence[DeliveryValues], transitions: Sequence[TransitionValues]
    ) -> int:
        """Upsert the states, insert the timeline rows and bring the statistics' rollups up to
        date in one transaction; rows written. The rollups go last, all chunks' changes in one
        statement per table in key order: each rollup row is locked once, as late as possible,
        and two workers' transactions lock them in the same order."""
        states = _latest(deliveries)
        steps = _unique(transitions)
        async with translate_database_errors(), self._engine.begin() as conn:
            changes: list[Any] = []
            for start in range(0, len(states), self._batch_rows):
                chunk = states[start : start + self._batch_rows]
                written = await conn.execute(self._upsert, delivery_columns(chunk))
                changes.extend(written.mappings().all())
            for start in range(0, len(steps), self._batch_rows):
                steps_chunk = steps[start : start + self._batch_rows]
                await conn.execute(self._insert_steps, transition_columns(steps_chunk))
            if changes:
                rollup = long_form_params(changes)
                await conn.execute(self._add_minutes, rollup)
                await conn.execute(self._add_hours, rollup)
        return len(states) + len(steps)

    async def get(self, notification_id: str) -> tuple[DeliveryRow, list[TransitionRow]] | None:
        t = notification_transitions
        state_query = sa.select(*_columns()).where(
            notification_deliveries.c.notification_id == notification_id
        )
        steps_query = (
            sa.select(*(t.c[name] for name in _TRANSITION_COLUMNS))
            .where(t.c.notification_id == notification_id)
            .order_by(t.c.occurred_at, t.c.state)
        )
        async with translate_database_errors(), self._engine.connect() as conn:
            conn = await one_snapshot(conn)
            row = (await conn.execute(state_query)).mappings().first()
            if row is None:
                return None
            steps = (await conn.execute(steps_query)).mappings().all()
        return (
            DeliveryRow.model_validate(dict(row)),
            [TransitionRow.model_validate(dict(step)) for step in steps],
        )

    async def all_with_timelines(self) -> list[tuple[DeliveryRow, list[TransitionRow]]]:
        """Every row of this store's tables with its timeline (a replay seeds its fold with
        them); two reads, however many rows."""
        d, t = self._deliveries, self._transitions
        rows_query = sa.select(*(d.c[name] for name in _ROW_COLUMNS))
        steps_query = sa.select(*(t.c[name] for name in _TRANSITION_COLUMNS)).order_by(
            t.c.notification_id, t.c.occurred_at, t.c.state
        )
        async with translate_database_errors(), self._engine.connect() as conn:
            conn = await one_snapshot(conn)
            rows = (await conn.execute(rows_query)).mappings().all()
            steps = (await conn.execute(steps_query)).mappings().all()
        timelines: dict[str, list[TransitionRow]] = {}
        for step in steps:
            row = TransitionRow.model_validate(dict(step))
            timelines.setdefault(row.notification_id, []).append(row)
        return [
            (DeliveryRow.model_validate(dict(row)), timelines.get(row["notification_id"], []))
            for row in rows
        ]

    async def list_for_user(
        self,
        user_id: str,
        *,
        limit: int,
        after: Cursor | None = None,
        state: str | None = None,
        channel: str | None = None,
    ) -> list[DeliveryRow]:
        """Newest first, keyset-paginated on (created_at, notification_id)."""
        d = notification_deliveries
        query = sa.select(*_columns()).where(d.c.user_id == user_id)
        if after is not None:
            query = query.where(sa.tuple_(d.c.created_at, d.c.notification_id) < sa.tuple_(*after))
        if state is not None:
            query = query.where(d.c.state == state)
        if channel is not None:
            query = query.where(d.c.channel == channel)
        query = query.order_by(d.c.created_at.desc(), d.c.notification_id.desc()).limit(limit)
        async with translate_database_errors(), self._engine.connect() as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [DeliveryRow.model_validate(dict(row)) for row in rows]

    async def stats(
        self, start: datetime, end: datetime, channel: str | None = None
    ) -> list[DeliveryStats]:
        """Per (channel, category), per channel and overall, for notifications created in
        [start, end): from the rollups but at the range's edges (`delivery_statistics`)."""
        async with translate_database_errors(), self._engine.connect() as conn:
            conn = await one_snapshot(conn)
            tallies = await read_tallies(conn, notification_deliveries, start, end, channel)
        return groups(tallies)

    async def rebuild_statistics(self, start: datetime, end: datetime) -> Rebuilt:
        """The statistics' rollups of the hours around [start, end) counted again from the
        rows (`delivery_rollups.rebuild`)."""
        async with translate_database_errors(), self._engine.begin() as conn:
            return await rebuild(conn, notification_deliveries, start, end)

    async def purge(self, created_before: datetime, batch_rows: int) -> int:
        """Deletes the notifications created before `created_before` (`delivery_retention`)."""
        return await purge_deliveries(self._engine, created_before, batch_rows)

    async def ping(self) -> None:
        async with translate_database_errors(), self._engine.connect() as conn:
            await conn.execute(sa.text("SELECT 1"))

    async def close(self) -> None:
        await self._engine.dispose()


def _columns() -> list[sa.ColumnElement[Any]]:
    return [notification_deliveries.c[name] for name in _ROW_COLUMNS]


def _latest(rows: Sequence[DeliveryValues]) -> list[DeliveryValues]:
    """One row per notification (PostgreSQL refuses the same key twice in one upsert): the last
    given, since the fold hands them over in processing order."""
    return list({row.notification_id: row for row in rows}.values())


def _unique(rows: Sequence[TransitionValues]) -> list[TransitionValues]:
    return list({(r.notification_id, r.state, r.occurred_at): r for r in rows}.values())


def _array_type(column: sa.Column[Any]) -> str:
    kind = column.type
    if isinstance(kind, sa.DateTime):
        return "timestamptz"
    if isinstance(kind, sa.SmallInteger):
        return "smallint"
    if isinstance(kind, sa.Integer):
        return "integer"
    if isinstance(kind, PG_UUID):
        return "uuid"
    return "text"


def _unnest(table: sa.Table, columns: Sequence[str]) -> str:
    """`SELECT ... FROM unnest(:a::text[], :b::timestamptz[], ...)`: a whole batch as one array
    per column, so the statement's text (and PostgreSQL's plan) is the same for every batch,
    instead of one bind parameter per value to render and send."""
    arrays = ", ".join(f"CAST(:{name} AS {_array_type(table.c[name])}[])" for name in columns)
    names = ", ".join(columns)
    return f"SELECT {names} FROM unnest({arrays}) AS r({names})"  # noqa: S608 - our column names


def _upsert_sql(table: sa.Table) -> sa.TextClause:
    columns = ", ".join(_ROW_COLUMNS)
    t = table.name
    # Accumulated columns only grow, whatever order the (idempotent) writes come in; known facts
    # are never replaced by unknowns.
    special = {
        "attempts": f"greatest({t}.attempts, EXCLUDED.attempts)",
        "queued_at": f"least({t}.queued_at, EXCLUDED.queued_at)",
        "delivered_at": f"least({t}.delivered_at, EXCLUDED.delivered_at)",
        "created_at": f"least({t}.created_at, EXCLUDED.created_at)",
        "updated_at": f"greatest({t}.updated_at, EXCLUDED.updated_at)",
    }
    kept = ("user_id", "channel", "category", "template", "caused_at", "provider")
    special |= {name: f"coalesce(EXCLUDED.{name}, {t}.{name})" for name in kept}
    special["provider_message_id"] = (
        f"coalesce(EXCLUDED.provider_message_id, {t}.provider_message_id)"
    )
    changes_set = ", ".join(
        f"{name} = {special.get(name, f'EXCLUDED.{name}')}"
        for name in _ROW_COLUMNS
        if name != "notification_id"
    )
    # What the batch changed, as the statistics' long form: each row written counted as it now
    # is, and as it was before taken back. `before` locks the rows it reads, so no other writer
    # changes them in between; the upsert reads its rows through `before`, so that each is read
    # and locked before the upsert changes it (a row this statement has already changed is
    # invisible to a later FOR UPDATE in it, which would leave it out of `before`). `before`
    # looks each notification up by key, in key order (two writers' batches lock shared rows in
    # the same order): written as a join, the planner scanned the whole table and hashed it,
    # a cost that grows with the table (7,000 rows: 7.4 of the statement's 18 ms for 350).
    incoming = ", ".join(f"incoming.{name}" for name in _ROW_COLUMNS)
    before = ", ".join(f"before.{name}" for name in CHANGE_COLUMNS.split(", "))
    changes = f"""
        SELECT {CHANGE_COLUMNS}, 1 AS n FROM written
        UNION ALL
        SELECT {before}, -1 AS n FROM before
         WHERE before.notification_id IN (SELECT notification_id FROM written)"""  # noqa: S608
    return sa.text(
        f"""
        WITH incoming AS ({_unnest(table, _ROW_COLUMNS)}),
        before AS MATERIALIZED (
            SELECT found.* FROM (
                SELECT DISTINCT notification_id FROM incoming ORDER BY notification_id
            ) AS wanted, LATERAL (
                SELECT notification_id, {CHANGE_COLUMNS} FROM {t}
                 WHERE {t}.notification_id = wanted.notification_id FOR UPDATE
            ) AS found
        ),
        written AS (
            INSERT INTO {t} ({columns})
            SELECT {incoming} FROM incoming
              LEFT JOIN before ON before.notification_id = incoming.notification_id
            ON CONFLICT (notification_id) DO UPDATE SET {changes_set}, materialized_at = now()
            WHERE ({t}.state_rank, {t}.state_at) <= (EXCLUDED.state_rank, EXCLUDED.state_at)
            RETURNING notification_id, {CHANGE_COLUMNS}
        )
        {long_form_sql(changes)}"""  # noqa: S608 - our column names
    )


def _insert_steps_sql(table: sa.Table) -> sa.TextClause:
    columns = ", ".join(_TRANSITION_COLUMNS)
    return sa.text(
        f"INSERT INTO {table.name} ({columns}) "
        f"{_unnest(table, _TRANSITION_COLUMNS)} ON CONFLICT DO NOTHING"
    )


async def one_snapshot(conn: AsyncConnection) -> AsyncConnection:
    """`conn` reading every statement of its transaction from one snapshot (REPEATABLE READ).

    A state and its timeline are two statements; under PostgreSQL's default READ COMMITTED each
    sees what was committed when it began, so a tracker batch committing between them paired an
    older state with a newer timeline (a state without the `queued_at` its timeline shows, in a
    CI run). The pool puts the connection's default level back when it is returned."""
    return await conn.execution_options(isolation_level="REPEATABLE READ")


def delivery_columns(rows: Sequence[DeliveryValues]) -> dict[str, list[Any]]:
    """The upsert's parameters for `rows`: one list per column, the provider texts redacted."""
    return _by_column(rows, _ROW_COLUMNS, _ROW_TEXTS)


def transition_columns(rows: Sequence[TransitionValues]) -> dict[str, list[Any]]:
    """The timeline insert's parameters for `rows`, as `delivery_columns`."""
    return _by_column(rows, _TRANSITION_COLUMNS, _TRANSITION_TEXTS)


def _by_column(
    rows: Sequence[tuple[Any, ...]], columns: Sequence[str], texts: Sequence[str]
) -> dict[str, list[Any]]:
    """The statement's parameters: one list per column, the provider texts redacted."""
    arrays = zip(*rows, strict=True)
    by_column = {name: list(values) for name, values in zip(columns, arrays, strict=True)}
    for name in texts:
        by_column[name] = [redact(text) for text in by_column[name]]
    return by_column
