"""Order list, audit trail and window statistics against the real PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from schemas.analytics import OrdersWindow
from schemas.orders import OrderHistoryEntry, OrderStatus, OrderView
from streams.settings import Settings
from streams.stores.order_store import OrderFilter, OrderStore

STATUSES: tuple[OrderStatus, ...] = ("pending", "paid", "fulfilled", "cancelled", "refunded")


def _view(order_id: str, user_id: str, created_at: datetime, status: OrderStatus) -> OrderView:
    return OrderView(
        order_id=order_id,
        user_id=user_id,
        status=status,
        currency="EUR",
        total_minor=100,
        item_count=1,
        last_event_id=uuid.uuid4(),
        last_event_type="order.updated",
        last_event_at=created_at,
        created_at=created_at,
        updated_at=created_at,
    )


def _entry(order_id: str, at: datetime, status: OrderStatus, *, ignored: bool) -> OrderHistoryEntry:
    return OrderHistoryEntry(
        order_id=order_id,
        event_id=uuid.uuid4(),
        event_type="order.updated",
        occurred_at=at,
        ingested_at=at + timedelta(seconds=1),
        source="test",
        correlation_id="c",
        event_status=status,
        status=status,
        ignored=ignored,
    )


@pytest.fixture
async def store(settings: Settings) -> AsyncIterator[OrderStore]:
    store = OrderStore.from_settings(settings.database)
    yield store
    await store.close()


def _base() -> datetime:
    """A time range of this test's own: the table is shared with every other test."""
    return datetime(2030, 1, 1, tzinfo=UTC) + timedelta(days=uuid.uuid4().int % 100_000)


async def test_pages_walk_every_matching_order_once_newest_first(store: OrderStore) -> None:
    base = _base()
    user = f"u-{uuid.uuid4()}"
    views = [
        # Every third order shares its creation time with the one before: the order id breaks ties.
        _view(
            f"o-{n:03d}-{uuid.uuid4()}",
            user,
            base + timedelta(seconds=n - n % 3 // 2),
            STATUSES[n % 5],
        )
        for n in range(300)
    ]
    await store.upsert(views)

    where = OrderFilter(user_id=user, status="paid")
    seen: list[OrderView] = []
    after = None
    while True:
        page = await store.list_orders(where, limit=25, after=after)
        seen += page
        if len(page) < 25:
            break
        after = (page[-1].created_at, page[-1].order_id)
    expected = sorted(
        (v for v in views if v.status == "paid"),
        key=lambda v: (v.created_at, v.order_id),
        reverse=True,
    )
    assert seen == expected

    window = OrderFilter(
        created_from=base + timedelta(seconds=100), created_to=base + timedelta(seconds=110)
    )
    in_range = await store.list_orders(window, limit=500)
    assert {v.order_id for v in in_range} == {
        v.order_id
        for v in views
        if base + timedelta(seconds=100) <= v.created_at < base + timedelta(seconds=110)
    }
    assert await store.list_orders(OrderFilter(user_id=f"u-{uuid.uuid4()}"), limit=10) == []


async def test_the_trail_is_in_event_time_order_and_keeps_the_first_row_of_an_event(
    store: OrderStore,
) -> None:
    base = _base()
    order_id = f"o-{uuid.uuid4()}"
    paid = _entry(order_id, base + timedelta(seconds=2), "paid", ignored=False)
    created = _entry(order_id, base, "pending", ignored=False)
    stale = _entry(order_id, base + timedelta(seconds=1), "cancelled", ignored=True)
    view = _view(order_id, "u", base, "paid")
    await store.upsert([view], [paid, stale])
    await store.upsert([view], [created, paid.model_copy(update={"ignored": True})])
    assert await store.history(order_id) == [created, stale, paid]
    assert await store.history(f"o-{uuid.uuid4()}") == []


def _window(
    start: datetime, currency: str, *, kind: str = "tumbling", paid: int = 1
) -> OrdersWindow:
    return OrdersWindow.model_validate(
        {
            "kind": kind,
            "window_start": start,
            "window_end": start + timedelta(minutes=1),
            "window_size_s": 60,
            "window_step_s": 60,
            "currency": currency,
            "events": 2 * paid + 1,
            "orders_created": paid + 1,
            "orders_paid": paid,
            "revenue_minor": 1000 * paid,
            "average_order_value_minor": 1000 if paid else None,
            "cancellations": 1,
            "refunds": 0,
            "refunded_minor": 0,
        }
    )


async def test_totals_sum_the_tumbling_windows_inside_the_range(store: OrderStore) -> None:
    base = _base().replace(hour=0, minute=0, second=0)
    windows = [_window(base + timedelta(minutes=m), "EUR", paid=m + 1) for m in range(3)]
    windows += [_window(base, "USD", paid=0), _window(base, "EUR", kind="hopping", paid=50)]
    assert await store.windows.upsert(windows) == 4
    # Published again after a crash: same rows, no double counting.
    await store.windows.upsert(windows[:2])

    everything = await store.windows.totals(base, base + timedelta(minutes=3))
    eur, usd = everything
    assert (eur.currency, eur.windows, eur.orders_paid, eur.revenue_minor) == ("EUR", 3, 6, 6000)
    assert (eur.orders_created, eur.cancellations, eur.events) == (9, 3, 15)
    assert eur.average_order_value_minor == 1000
    assert (eur.covered_from, eur.covered_to) == (base, base + timedelta(minutes=3))
    assert (usd.orders_paid, usd.average_order_value_minor) == (0, None)

    # A window only partly inside the range is left out.
    [first] = await store.windows.totals(base, base + timedelta(seconds=90), "EUR")
    assert (first.windows, first.orders_paid) == (1, 1)
