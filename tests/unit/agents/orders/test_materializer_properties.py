"""Properties of the orders materializer: batching, redelivery and replay change no row.

Batches of `orders.events` records go through the materializer with a dict for the table and a
store that keeps PostgreSQL's rule (a row is replaced only by a view at least as new, see
`streams.stores.order_store`). Whatever the batch cuts, duplicates and replays, the rows end up
as the fold of the distinct events says.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Sequence
from typing import Any
from uuid import UUID

from hypothesis import given, settings
from hypothesis import strategies as st

from agents.orders.materializer import OrderMaterializer
from agents.retry import Backoff
from schemas.orders import OrderEvent, OrderHistoryEntry, OrderView
from streams.kafka.wire import decode, encode
from streams.runtime import SourceRecord
from tests.unit.agents.batch_fakes import ScopeAndSleep
from tests.unit.agents.orders.test_state_properties import fold_all, histories, redelivered
from tests.unit.fakes import FakeSink

TOPIC = "t-orders.events"


class NewestRowStore:
    """PostgreSQL's upsert rule: `ON CONFLICT ... WHERE held.version <= offered.version`; the
    audit trail keeps the first row of each event (`ON CONFLICT DO NOTHING`)."""

    def __init__(self) -> None:
        self.rows: dict[str, OrderView] = {}
        self.trail: dict[tuple[str, UUID], OrderHistoryEntry] = {}

    async def upsert(
        self, views: Sequence[OrderView], history: Sequence[OrderHistoryEntry] = ()
    ) -> int:
        for entry in history:
            self.trail.setdefault((entry.order_id, entry.event_id), entry)
        ids = [view.order_id for view in views]
        assert len(ids) == len(set(ids)), "one row per order and statement"
        for view in views:
            held = self.rows.get(view.order_id)
            if held is None or held.version <= view.version:
                self.rows[view.order_id] = view
        return len(views)


class Worker(ScopeAndSleep):
    def __init__(self, table: dict[bytes, dict[str, Any]], store: NewestRowStore) -> None:
        super().__init__()
        self.materializer: OrderMaterializer[SourceRecord] = OrderMaterializer(
            table=table,
            decode=lambda raw: decode(raw, OrderEvent),
            views=store,
            dead_letters=FakeSink(),
            describe=lambda record: record,
            scope=self.scope,
            backoff=Backoff(initial_s=0.5, max_s=2.0),
            sleep=self.sleep,
        )

    def process(self, batches: list[list[SourceRecord]]) -> None:
        async def run() -> None:
            for batch in batches:
                await self.materializer.process(batch)

        asyncio.run(run())


def as_records(events: list[OrderEvent]) -> list[SourceRecord]:
    return [
        SourceRecord(TOPIC, 0, offset, event.payload.id.encode(), encode(event))
        for offset, event in enumerate(events)
    ]


def cut(records: list[SourceRecord], cuts: set[int]) -> list[list[SourceRecord]]:
    bounds = [0, *sorted(c for c in cuts if 0 < c < len(records)), len(records)]
    return [records[a:b] for a, b in itertools.pairwise(bounds)]


@settings(max_examples=60)
@given(data=st.data(), events=histories, cuts=st.sets(st.integers(1, 20), max_size=5))
def test_any_batching_of_any_redelivery_writes_the_folded_views(
    data: st.DataObject, events: list[OrderEvent], cuts: set[int]
) -> None:
    records = as_records(data.draw(redelivered(events)))
    store = NewestRowStore()
    Worker({}, store).process(cut(records, cuts))
    assert store.rows == fold_all(events)
    # The audit trail holds every event once, whatever was delivered twice.
    assert {event_id for _, event_id in store.trail} == {e.event_id for e in events}


@settings(max_examples=60)
@given(data=st.data(), events=histories, cuts=st.sets(st.integers(1, 20), max_size=5))
def test_a_replay_from_a_committed_batch_writes_the_folded_views(
    data: st.DataObject, events: list[OrderEvent], cuts: set[int]
) -> None:
    """A crash: the table (its changelog) holds `restored` records, PostgreSQL the batches up
    to `written`, and the partition is read again from a committed batch start `resumed`."""
    records = as_records(events)
    batches = cut(records, cuts)
    written = data.draw(st.integers(0, len(batches)))
    restored = data.draw(st.integers(sum(len(b) for b in batches[:written]), len(records)))
    starts = [sum(len(b) for b in batches[:i]) for i in range(written + 1)]
    resumed = data.draw(st.sampled_from(starts))
    table: dict[bytes, dict[str, Any]] = {}
    store = NewestRowStore()
    Worker(table, store).process(batches[:written])
    # The changelog may hold more than PostgreSQL got: the rest of the batch it died in.
    Worker(table, NewestRowStore()).process([records[starts[-1] : restored]])
    again = data.draw(st.sets(st.integers(1, 20), max_size=5))
    Worker(table, store).process(cut(records[resumed:], again))
    assert store.rows == fold_all(events)
    assert {event_id for _, event_id in store.trail} == {e.event_id for e in events}
