"""The views a replay can rebuild: their source topic, tables, and the worker's fold over them.

Each fold is the very batch logic the worker runs (`OrderMaterializer`, `SessionTracker`), given
an in-memory table instead of Faust's and a store writing to the shadow tables instead of the
live ones. What the worker sends besides rows (dead letters, alerts) is dropped: a replay
rebuilds a view, it does not repeat the pipeline's outputs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from agents.orders.materializer import OrderMaterializer
from agents.orders.state import to_entry
from agents.retry import Backoff
from agents.sessions.tracker import SessionTracker
from schemas.auth import AuthEvent
from schemas.orders import OrderEvent
from streams.kafka.wire import WireCodec
from streams.runtime import OutgoingRecord, SourceRecord
from streams.settings import ReplayProcessSettings
from streams.stores.order_store import OrderStore, order_history, order_views
from streams.stores.session_store import SessionStore, user_devices, user_sessions
from streams.stores.shadow import ShadowTable


class Fold(Protocol):
    async def process(self, batch: Sequence[SourceRecord]) -> None: ...


class Dropped:
    """Where a replay's side outputs go: counted, never sent."""

    def __init__(self) -> None:
        self.count = 0

    async def send_all(self, records: Sequence[OutgoingRecord]) -> None:
        self.count += len(records)


@dataclass(frozen=True, slots=True)
class FoldContext:
    engine: AsyncEngine
    settings: ReplayProcessSettings
    codec: WireCodec
    # The shadow of each of the view's tables, in `ReplayView.tables` order.
    shadows: Sequence[sa.Table]
    # The fold's table, seeded when the replay starts from the live view (`--since`).
    table: dict[bytes, dict[str, Any]]


@dataclass(frozen=True, slots=True)
class ReplayView:
    name: str
    topic: str
    tables: tuple[ShadowTable, ...]
    build: Callable[[FoldContext], Fold]
    # Whether the fold can start from the live view and read only recent records: true of a
    # fold that converges whatever it has seen before (orders), not of one that counts.
    resumable: bool = False


def _describe(record: SourceRecord) -> SourceRecord:
    return record


def _orders(context: FoldContext) -> Fold:
    views, history = context.shadows
    store = OrderStore(context.engine, context.settings.database.batch_rows)
    codec = context.codec
    return OrderMaterializer(
        table=context.table,
        decode=lambda raw: codec.decode(raw, OrderEvent),
        views=store.writing_to(views, history),
        dead_letters=Dropped(),
        describe=_describe,
        scope=lambda _record: nullcontext(),
        backoff=Backoff(),
    )


def _sessions(context: FoldContext) -> Fold:
    sessions, devices = context.shadows
    store = SessionStore(context.engine, context.settings.database.batch_rows)
    codec = context.codec
    return SessionTracker(
        table=context.table,
        decode=lambda raw: codec.decode(raw, AuthEvent),
        encode=codec.encode,
        rows=store.writing_to(sessions, devices),
        alerts=Dropped(),
        describe=_describe,
        scope=lambda _record: nullcontext(),
        max_devices=context.settings.security.max_devices,
        backoff=Backoff(),
    )


async def seed_orders(engine: AsyncEngine, views: sa.Table) -> dict[bytes, dict[str, Any]]:
    """The fold's table as the live view has it (read from its copy in the shadow)."""
    store = OrderStore(engine, 1, views=views)
    return {view.order_id.encode(): to_entry(view) for view in await store.all_views()}


VIEWS: dict[str, ReplayView] = {
    "orders": ReplayView(
        name="orders",
        topic="orders.events",
        tables=(
            ShadowTable(order_views, ("order_id",)),
            ShadowTable(order_history, ("order_id", "event_id")),
        ),
        build=_orders,
        resumable=True,
    ),
    "sessions": ReplayView(
        name="sessions",
        topic="auth.events",
        tables=(
            ShadowTable(user_sessions, ("user_id", "session_id")),
            ShadowTable(user_devices, ("user_id", "device_id")),
        ),
        build=_sessions,
    ),
}
