"""One batch of `orders.events` records -> the `orders` table, dead letters, and PostgreSQL rows.

This is the body of the `materialize_orders` agent, written against small protocols instead of
Faust and the database, so the whole batch logic is tested with fakes. Per batch there is one
PostgreSQL transaction (the views and the audit trail of every event of the batch, see
`OrderStore.upsert`) and one round of dead-letter sends, never one per event.

Every decodable event's resulting view is written, even when the event changed nothing: after a
crash the worker re-reads events whose table update survived (the changelog) but whose row write
did not, and only re-writing the unchanged view repairs PostgreSQL. The store's upsert is
idempotent and never lets an older view overwrite a newer row, so this costs nothing else.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, MutableMapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from agents.dead_letters import set_aside
from agents.orders.state import from_entry, history_entry, is_stale, merge, to_entry
from agents.retry import Backoff, Sleep, retry_retriable
from schemas.orders import OrderEvent, OrderHistoryEntry, OrderView
from streams.errors import PoisonError, RetriableError
from streams.runtime import OutgoingRecord, RecordSink, SourceRecord
from streams.stores.order_store import latest_per_order

log = logging.getLogger(__name__)

E = TypeVar("E")

# Keyed by the order id in UTF-8: the same bytes as the record key, see `agents.orders.pipeline`.
OrdersTable = MutableMapping[bytes, dict[str, Any]]
# Record value -> event; raises `PoisonError` for bytes that will never decode.
Decode = Callable[[bytes | None], OrderEvent]


class ViewSink(Protocol):
    async def upsert(
        self, views: Sequence[OrderView], history: Sequence[OrderHistoryEntry] = ()
    ) -> int: ...


@dataclass(slots=True)
class MaterializerStats:
    batches: int = 0
    events: int = 0
    dead_letters: int = 0
    rows_written: int = 0
    retries: int = 0


def fold_record(
    table: OrdersTable, raw: bytes | None, decode: Decode
) -> tuple[OrderView, OrderHistoryEntry]:
    """Decode one record and fold it into its order's table entry; raises `PoisonError`.

    Returns the resulting view and the event's audit-trail row (stale when it was older than
    the state held, which it then left as it was)."""
    event = decode(raw)
    key = event.payload.id.encode()
    current = from_entry(table.get(key))
    view = merge(current, event)
    if view != current:
        table[key] = to_entry(view)
    return view, history_entry(event, view, ignored=is_stale(current, event))


class OrderMaterializer(Generic[E]):
    """Processes batches of `E` (Faust events in the worker, plain records in tests).

    `describe` turns an `E` into its topic/partition/offset and bytes; `scope` wraps the table
    update of one `E` (in the worker: makes it Faust's current event, see `event_scope`).
    """

    def __init__(
        self,
        *,
        table: OrdersTable,
        decode: Decode,
        views: ViewSink,
        dead_letters: RecordSink,
        describe: Callable[[E], SourceRecord],
        scope: Callable[[E], AbstractContextManager[None]],
        backoff: Backoff,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self._table = table
        self._decode = decode
        self._views = views
        self._dead_letters = dead_letters
        self._describe = describe
        self._scope = scope
        self._backoff = backoff
        self._sleep = sleep
        self.stats = MaterializerStats()

    async def process(self, batch: Sequence[E]) -> None:
        folded: list[OrderView] = []
        history: list[OrderHistoryEntry] = []
        rejected: list[OutgoingRecord] = []
        for item in batch:
            record = self._describe(item)
            try:
                with self._scope(item):
                    view, entry = fold_record(self._table, record.value, self._decode)
                folded.append(view)
                history.append(entry)
            except PoisonError as exc:
                rejected.append(set_aside(record, exc))
        if rejected:
            await self._send_dead_letters(rejected)
        views = latest_per_order(folded)
        if views:
            await self._write_views(views, history)
        self.stats.batches += 1
        self.stats.events += len(batch)

    async def _send_dead_letters(self, records: Sequence[OutgoingRecord]) -> None:
        await retry_retriable(
            lambda: self._dead_letters.send_all(records),
            backoff=self._backoff,
            what=f"sending {len(records)} dead letters",
            sleep=self._sleep,
            on_retry=self._count_retry,
        )
        self.stats.dead_letters += len(records)

    async def _write_views(
        self, views: Sequence[OrderView], history: Sequence[OrderHistoryEntry]
    ) -> None:
        rows = await retry_retriable(
            lambda: self._views.upsert(views, history),
            backoff=self._backoff,
            what=f"writing {len(views)} order views",
            sleep=self._sleep,
            on_retry=self._count_retry,
        )
        self.stats.rows_written += rows

    def _count_retry(self, error: RetriableError, delay_s: float) -> None:
        self.stats.retries += 1
