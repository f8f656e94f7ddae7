"""The views a replay can rebuild: their source topic, tables, and the worker's fold over them.

Each fold is the very batch logic the worker runs (`OrderMaterializer`, `SessionTracker`,
`DeliveryTracker`), given
an in-memory table instead of Faust's and a store writing to the shadow tables instead of the
live ones. What the worker sends besides rows (dead letters, alerts) is dropped: a replay
rebuilds a view, it does not repeat the pipeline's outputs.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from agents.orders.materializer import OrderMaterializer
from agents.orders.state import to_entry
from agents.retry import Backoff
from agents.sessions.tracker import SessionTracker
from agents.tracking.state import Delivery, Facts, Step, fold
from agents.tracking.state import to_entry as delivery_entry
from agents.tracking.tracker import DeliveryTracker, Topics, is_own_record
from schemas.auth import AuthEvent
from schemas.notifications import NotificationReceiptEvent, NotificationStatusEvent
from schemas.orders import OrderEvent
from streams.kafka.catalog import TopicCatalog
from streams.kafka.wire import WireCodec
from streams.runtime import OutgoingRecord, SourceRecord
from streams.settings import ReplayProcessSettings
from streams.stores.delivery_rollups import (
    ROLLUP_KEY,
    notification_stats_hours,
    notification_stats_minutes,
)
from streams.stores.delivery_store import (
    DeliveryStore,
    notification_deliveries,
    notification_transitions,
)
from streams.stores.order_store import OrderStore, order_history, order_views
from streams.stores.session_store import SessionStore, user_devices, user_sessions
from streams.stores.shadow import ShadowTable

FoldTable = dict[bytes, dict[str, Any]]
Seed = Callable[[AsyncEngine, Sequence[sa.Table]], Awaitable[FoldTable]]


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


def _every(_headers: Sequence[tuple[str, bytes]]) -> bool:
    return True


@dataclass(frozen=True, slots=True)
class ReplayView:
    name: str
    # Base names, read one after the other.
    topics: tuple[str, ...]
    tables: tuple[ShadowTable, ...]
    build: Callable[[FoldContext], Fold]
    # The fold's table as the live view has it (read from the view's copy in the shadows), for
    # a replay of recent records only (`--since`): only for a fold that converges whatever it
    # has seen before (orders, deliveries), not for one that counts (sessions: logins).
    seed: Seed | None = None
    # For a fold that cannot be seeded: the column (in every table) holding the topic's record
    # key. `--since` then rebuilds the keys with records since the time, each from its whole
    # history, and leaves the other keys' rows alone (see `agents.replay.runner`).
    scope_column: str | None = None
    # Which records (by their headers) the fold reads, as the worker's wiring filters them.
    keep: Callable[[Sequence[tuple[str, bytes]]], bool] = _every

    @property
    def resumable(self) -> bool:
        return self.seed is not None or self.scope_column is not None


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


def _deliveries(context: FoldContext) -> Fold:
    store = DeliveryStore(context.engine, context.settings.database.batch_rows)
    codec = context.codec
    catalog = TopicCatalog(context.settings.topic_prefix, context.settings.kafka)
    status = catalog.for_topic("notifications.status").name
    receipts = catalog.for_topic("notifications.receipts").name
    return DeliveryTracker(
        table=context.table,
        topics=Topics(status=status, receipts=receipts),
        decode_status=lambda raw: codec.decode(raw, NotificationStatusEvent),
        decode_receipt=lambda raw: codec.decode(raw, NotificationReceiptEvent),
        encode=codec.encode,
        store=store.writing_to(*context.shadows),
        status_out=Dropped(),
        reports_out=Dropped(),
        dead_letters=defaultdict(Dropped),
        describe=_describe,
        scope=lambda _record: nullcontext(),
        backoff=Backoff(),
    )


async def seed_orders(engine: AsyncEngine, shadows: Sequence[sa.Table]) -> FoldTable:
    views, history = shadows
    store = OrderStore(engine, 1, views=views, history=history)
    return {view.order_id.encode(): to_entry(view) for view in await store.all_views()}


async def seed_deliveries(engine: AsyncEngine, shadows: Sequence[sa.Table]) -> FoldTable:
    """Each notification's entry as its timeline folds (the fold is order-independent, so
    folding the stored steps gives the entry the worker holds, but for its outbox)."""
    deliveries, transitions, *_statistics = shadows
    store = DeliveryStore(engine, 1, deliveries=deliveries, transitions=transitions)
    table: FoldTable = {}
    for row, steps in await store.all_with_timelines():
        facts = Facts(row.user_id, row.channel, row.category, row.template, row.caused_at)
        delivery: Delivery | None = None
        for step in steps:
            fields = step.model_dump(exclude={"notification_id"})
            delivery, _ = fold(delivery, row.notification_id, Step(**fields), facts)
        if delivery is not None:
            table[row.notification_id.encode()] = delivery_entry(delivery)
    return table


VIEWS: dict[str, ReplayView] = {
    "orders": ReplayView(
        name="orders",
        topics=("orders.events",),
        tables=(
            ShadowTable(order_views, ("order_id",)),
            ShadowTable(order_history, ("order_id", "event_id")),
        ),
        build=_orders,
        seed=seed_orders,
    ),
    "sessions": ReplayView(
        name="sessions",
        topics=("auth.events",),
        tables=(
            ShadowTable(user_sessions, ("user_id", "session_id")),
            ShadowTable(user_devices, ("user_id", "device_id")),
        ),
        build=_sessions,
        # The fold counts logins and keeps in its entries what no row holds (known countries,
        # devices it forgot, the ids of recent events), so it cannot start from stored rows:
        # `--since` rebuilds each user with records since then from the user's whole history.
        scope_column="user_id",
    ),
    "deliveries": ReplayView(
        name="deliveries",
        # Statuses first: a receipt then finds its notification's user (in the worker it may
        # come first and wait for one; the rows end the same).
        topics=("notifications.status", "notifications.receipts"),
        tables=(
            ShadowTable(notification_deliveries, ("notification_id",)),
            ShadowTable(notification_transitions, ("notification_id", "state", "occurred_at")),
            # The statistics' rollups: rebuilt with the rows, so they count what the rows hold.
            ShadowTable(notification_stats_minutes, ROLLUP_KEY, ignored=()),
            ShadowTable(notification_stats_hours, ROLLUP_KEY, ignored=()),
        ),
        build=_deliveries,
        seed=seed_deliveries,
        # The transitions the worker derived from receipts and published: derived again here.
        keep=lambda headers: not is_own_record(headers),
    ),
}
