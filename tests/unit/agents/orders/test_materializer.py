"""One batch through the materializer, with a dict for the table and fakes for the sinks."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from agents.dead_letters import HEADER_ERROR_TYPE, HEADER_SOURCE_OFFSET
from agents.orders.materializer import OrderMaterializer
from agents.orders.state import from_entry
from agents.retry import Backoff
from schemas.orders import OrderEvent, OrderHistoryEntry, OrderView
from streams.errors import ServiceUnavailableError, TributaryError
from streams.kafka.wire import decode, encode
from streams.runtime import SourceRecord
from tests.unit.agents.batch_fakes import ScopeAndSleep
from tests.unit.agents.factories import order_event
from tests.unit.fakes import FakeSink

TOPIC = "t-orders.events"


class FakeStore:
    """Records each upsert call; fails the first `failures` calls like PostgreSQL being away."""

    def __init__(self, failures: int = 0, error: Exception | None = None) -> None:
        self.calls: list[list[OrderView]] = []
        self.history: list[list[OrderHistoryEntry]] = []
        self.failures = failures
        self.error = error or ServiceUnavailableError("postgresql", "connection refused")

    async def upsert(
        self, views: Sequence[OrderView], history: Sequence[OrderHistoryEntry] = ()
    ) -> int:
        if self.failures:
            self.failures -= 1
            raise self.error
        self.calls.append(list(views))
        self.history.append(list(history))
        return len(views)


class Harness(ScopeAndSleep):
    def __init__(self, store: FakeStore | None = None) -> None:
        super().__init__()
        self.table: dict[bytes, dict[str, Any]] = {}
        self.store = store or FakeStore()
        self.dead_letters = FakeSink()
        self.materializer: OrderMaterializer[SourceRecord] = OrderMaterializer(
            table=self.table,
            decode=lambda raw: decode(raw, OrderEvent),
            views=self.store,
            dead_letters=self.dead_letters,
            describe=lambda record: record,
            scope=self.scope,
            backoff=Backoff(initial_s=0.5, max_s=2.0),
            sleep=self.sleep,
        )


def records(*values: bytes, first_offset: int = 0) -> list[SourceRecord]:
    return [
        SourceRecord(topic=TOPIC, partition=3, offset=first_offset + n, key=b"k", value=value)
        for n, value in enumerate(values)
    ]


async def test_a_batch_updates_the_table_and_writes_one_row_per_order_in_one_call() -> None:
    harness = Harness()
    a1 = order_event("a", at_s=1)
    a2 = order_event("a", at_s=2, status="paid")
    b1 = order_event("b", at_s=1)
    await harness.materializer.process(records(*(encode(e) for e in (a1, b1, a2))))

    assert len(harness.store.calls) == 1
    written = {view.order_id: view for view in harness.store.calls[0]}
    assert set(written) == {"a", "b"}
    assert written["a"].last_event_id == a2.event_id
    assert from_entry(harness.table[b"a"]) == written["a"]
    assert from_entry(harness.table[b"b"]) == written["b"]
    assert harness.scoped == [0, 1, 2]
    assert harness.dead_letters.calls == []
    stats = harness.materializer.stats
    assert (stats.batches, stats.events, stats.rows_written, stats.retries) == (1, 3, 2, 0)


async def test_a_poison_record_is_dead_lettered_and_the_batch_goes_on() -> None:
    harness = Harness()
    good = order_event("a", at_s=1)
    batch = records(b"{not avro", encode(good), first_offset=41)
    await harness.materializer.process(batch)

    assert [view.order_id for view in harness.store.calls[0]] == ["a"]
    [[letter]] = harness.dead_letters.calls
    assert letter.value == b"{not avro"
    assert letter.key == b"k"
    headers = dict(letter.headers)
    assert headers[HEADER_ERROR_TYPE] == b"BadMagicByteError"
    assert headers[HEADER_SOURCE_OFFSET] == b"41"
    assert harness.materializer.stats.dead_letters == 1


async def test_a_batch_of_only_poison_writes_no_rows() -> None:
    harness = Harness()
    await harness.materializer.process(records(b"{not avro}", b""))
    assert harness.store.calls == []
    [letters] = harness.dead_letters.calls
    assert [dict(letter.headers)[HEADER_ERROR_TYPE] for letter in letters] == [
        b"BadMagicByteError",
        b"TruncatedRecordError",
    ]


async def test_a_replayed_event_is_written_again_to_repair_a_lost_row() -> None:
    harness = Harness()
    event = order_event("a", at_s=1)
    await harness.materializer.process(records(encode(event)))
    await harness.materializer.process(records(encode(event)))
    assert harness.store.calls[0] == harness.store.calls[1]


async def test_an_unavailable_database_is_retried_with_capped_backoff_until_it_is_back() -> None:
    harness = Harness(FakeStore(failures=4))
    await harness.materializer.process(records(encode(order_event("a"))))
    assert harness.sleeps == [0.5, 1.0, 2.0, 2.0]
    assert [view.order_id for view in harness.store.calls[0]] == ["a"]
    assert harness.materializer.stats.retries == 4


async def test_an_error_that_retrying_cannot_fix_propagates() -> None:
    harness = Harness(FakeStore(failures=1, error=TributaryError("bug")))
    with pytest.raises(TributaryError, match="bug"):
        await harness.materializer.process(records(encode(order_event("a"))))
    assert harness.sleeps == []


async def test_the_audit_trail_of_a_batch_is_written_with_its_views_in_one_call() -> None:
    harness = Harness()
    created = order_event("a", at_s=1)
    paid = order_event("a", at_s=3, status="paid")
    late = order_event("a", at_s=2, status="cancelled")
    await harness.materializer.process(records(*(encode(e) for e in (created, paid, late))))

    [trail] = harness.store.history
    assert [(e.event_id, e.event_status, e.status, e.ignored) for e in trail] == [
        (created.event_id, "pending", "pending", False),
        (paid.event_id, "paid", "paid", False),
        # Older than the paid state held: it led nowhere, the order stays paid.
        (late.event_id, "cancelled", "paid", True),
    ]
    first = trail[0]
    assert (first.order_id, first.event_type, first.source) == ("a", "order.created", "test")
    assert (first.occurred_at, first.ingested_at) == (created.occurred_at, created.ingested_at)
    assert first.correlation_id == created.correlation_id


async def test_a_poison_record_has_no_trail_row() -> None:
    harness = Harness()
    good = order_event("a", at_s=1)
    await harness.materializer.process(records(b"{not avro", encode(good)))
    assert [entry.event_id for entry in harness.store.history[0]] == [good.event_id]
