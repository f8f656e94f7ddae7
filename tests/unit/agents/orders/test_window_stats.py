"""Batches of closed order windows through the stats materializer, with a fake store."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from agents.metrics.aggregation import window_record
from agents.orders.window_stats import OrderWindowMaterializer
from agents.retry import Backoff
from schemas.analytics import OrdersWindow, OrdersWindowRecord
from streams.errors import ServiceUnavailableError
from streams.kafka.wire import decode, encode
from streams.runtime import SourceRecord
from tests.unit.agents.batch_fakes import ScopeAndSleep

T0 = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)


class FakeWindows:
    def __init__(self, failures: int = 0) -> None:
        self.calls: list[list[OrdersWindow]] = []
        self.failures = failures

    async def upsert(self, windows: Sequence[OrdersWindow]) -> int:
        if self.failures:
            self.failures -= 1
            raise ServiceUnavailableError("postgresql", "connection refused")
        self.calls.append(list(windows))
        return len(windows)


def window(currency: str, minute: int, paid: int) -> OrdersWindow:
    start = T0 + timedelta(minutes=minute)
    return OrdersWindow(
        kind="tumbling",
        window_start=start,
        window_end=start + timedelta(minutes=1),
        window_size_s=60,
        window_step_s=60,
        currency=currency,
        events=paid,
        orders_created=0,
        orders_paid=paid,
        revenue_minor=paid * 100,
        average_order_value_minor=100 if paid else None,
        cancellations=0,
        refunds=0,
        refunded_minor=0,
    )


def records(*values: bytes) -> list[SourceRecord]:
    return [
        SourceRecord(topic="t-analytics.orders", partition=0, offset=n, key=b"k", value=value)
        for n, value in enumerate(values)
    ]


def harness(store: FakeWindows) -> tuple[OrderWindowMaterializer[SourceRecord], ScopeAndSleep]:
    clock = ScopeAndSleep()
    materializer: OrderWindowMaterializer[SourceRecord] = OrderWindowMaterializer(
        decode=lambda raw: decode(raw, OrdersWindowRecord),
        windows=store,
        describe=lambda record: record,
        backoff=Backoff(initial_s=0.5, max_s=2.0),
        sleep=clock.sleep,
    )
    return materializer, clock


async def test_a_batch_of_windows_is_written_in_one_call_and_garbage_is_skipped() -> None:
    store = FakeWindows()
    materializer, _ = harness(store)
    eur, usd = window("EUR", 0, 3), window("USD", 0, 1)
    values = [encode(window_record(w, T0)[1]) for w in (eur, usd)]
    await materializer.process(records(values[0], b"garbage", values[1]))
    assert store.calls == [[eur, usd]]
    stats = materializer.stats
    assert (stats.batches, stats.windows, stats.undecodable, stats.rows_written) == (1, 2, 1, 2)


async def test_an_unavailable_database_is_retried() -> None:
    store = FakeWindows(failures=2)
    materializer, clock = harness(store)
    await materializer.process(records(encode(window_record(window("EUR", 0, 1), T0)[1])))
    assert clock.sleeps == [0.5, 1.0]
    assert len(store.calls) == 1
    assert materializer.stats.retries == 2
