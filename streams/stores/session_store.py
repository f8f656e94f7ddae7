"""The `user_sessions` and `user_devices` tables: written in batches by the worker (the fold of
`auth.events` in `agents.sessions`), read by the API.

Each row carries the revision of its user's entry that produced it, and a row is only replaced
by one at least as new, so a replay or two workers racing through a rebalance never move a
session back (an ended session never comes back to life through an older write).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import UUID as PG_UUID
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from schemas.sessions import DeviceView, SessionView
from streams.settings import DatabaseSettings
from streams.stores.database import create_engine, translate_database_errors

metadata = sa.MetaData()


def _tz() -> sa.DateTime:
    return sa.DateTime(timezone=True)


user_sessions = sa.Table(
    "user_sessions",
    metadata,
    sa.Column("user_id", sa.Text, primary_key=True),
    sa.Column("session_id", sa.Text, primary_key=True),
    sa.Column("device_id", sa.Text, nullable=True),
    sa.Column("ip", sa.Text, nullable=False),
    sa.Column("user_agent", sa.Text, nullable=True),
    sa.Column("country", sa.Text, nullable=True),
    sa.Column("started_at", _tz(), nullable=False),
    sa.Column("last_seen_at", _tz(), nullable=False),
    sa.Column("ended_at", _tz(), nullable=True),
    sa.Column("end_reason", sa.Text, nullable=True),
    sa.Column("opened_by", PG_UUID(as_uuid=True), nullable=False),
    sa.Column("logins", sa.Integer, nullable=False),
    sa.Column("revision", sa.BigInteger, nullable=False),
    sa.Column("materialized_at", _tz(), nullable=False, server_default=sa.func.now()),
)

user_devices = sa.Table(
    "user_devices",
    metadata,
    sa.Column("user_id", sa.Text, primary_key=True),
    sa.Column("device_id", sa.Text, primary_key=True),
    sa.Column("first_seen_at", _tz(), nullable=False),
    sa.Column("last_seen_at", _tz(), nullable=False),
    sa.Column("last_ip", sa.Text, nullable=False),
    sa.Column("user_agent", sa.Text, nullable=True),
    sa.Column("country", sa.Text, nullable=True),
    sa.Column("login_count", sa.Integer, nullable=False),
    sa.Column("first_event_id", PG_UUID(as_uuid=True), nullable=False),
    sa.Column("flagged", sa.Boolean, nullable=False),
    sa.Column("revision", sa.BigInteger, nullable=False),
    sa.Column("materialized_at", _tz(), nullable=False, server_default=sa.func.now()),
)

_SESSION_COLUMNS = tuple(SessionView.model_fields)
_DEVICE_COLUMNS = tuple(DeviceView.model_fields)


class SessionStore:
    def __init__(
        self,
        engine: AsyncEngine,
        batch_rows: int,
        *,
        sessions: sa.Table = user_sessions,
        devices: sa.Table = user_devices,
    ) -> None:
        """`sessions` and `devices` are other tables of the same columns for a replay's shadow."""
        self._engine = engine
        self._batch_rows = batch_rows
        self._sessions = sessions
        self._devices = devices

    def writing_to(self, sessions: sa.Table, devices: sa.Table) -> SessionStore:
        """A store on the same engine writing to other tables (a replay's shadows)."""
        return SessionStore(self._engine, self._batch_rows, sessions=sessions, devices=devices)

    @classmethod
    def from_settings(cls, database: DatabaseSettings) -> SessionStore:
        return cls(create_engine(database), database.batch_rows)

    async def write(self, sessions: Sequence[SessionView], devices: Sequence[DeviceView]) -> int:
        """Upsert both kinds of rows in one transaction; returns how many were offered."""
        batches = [
            (self._sessions, ("user_id", "session_id"), [s.model_dump() for s in sessions]),
            (self._devices, ("user_id", "device_id"), [d.model_dump() for d in devices]),
        ]
        async with translate_database_errors(), self._engine.begin() as conn:
            for table, key, rows in batches:
                for start in range(0, len(rows), self._batch_rows):
                    chunk = rows[start : start + self._batch_rows]
                    await conn.execute(_upsert(table, key, chunk))
        return len(sessions) + len(devices)

    async def for_user(
        self, user_id: str, *, include_ended: bool = False
    ) -> tuple[list[SessionView], list[DeviceView]]:
        """The user's sessions (active ones only unless asked), newest first, and devices,
        most recently seen first."""
        s, d = user_sessions.c, user_devices.c
        sessions_query = sa.select(*(s[name] for name in _SESSION_COLUMNS)).where(
            s.user_id == user_id
        )
        if not include_ended:
            sessions_query = sessions_query.where(s.ended_at.is_(None))
        sessions_query = sessions_query.order_by(s.started_at.desc(), s.session_id.desc())
        devices_query = (
            sa.select(*(d[name] for name in _DEVICE_COLUMNS))
            .where(d.user_id == user_id)
            .order_by(d.last_seen_at.desc(), d.device_id)
        )
        async with translate_database_errors(), self._engine.connect() as conn:
            session_rows = (await conn.execute(sessions_query)).mappings().all()
            device_rows = (await conn.execute(devices_query)).mappings().all()
        return (
            [SessionView.model_validate(dict(row)) for row in session_rows],
            [DeviceView.model_validate(dict(row)) for row in device_rows],
        )

    async def close(self) -> None:
        await self._engine.dispose()


def _upsert(table: sa.Table, key: tuple[str, ...], rows: list[dict[str, Any]]) -> sa.Insert:
    stmt = insert(table).values(rows)
    columns = [c.name for c in table.columns if c.name not in key and c.name != "materialized_at"]
    changes: dict[str, Any] = {name: stmt.excluded[name] for name in columns}
    changes["materialized_at"] = sa.func.now()
    return stmt.on_conflict_do_update(
        index_elements=list(key),
        set_=changes,
        where=table.c.revision <= stmt.excluded.revision,
    )
