"""The order view store against the real PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import SecretStr

from schemas.orders import OrderView
from streams.errors import ServiceUnavailableError
from streams.settings import Settings
from streams.stores.order_store import OrderStore

T0 = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


def _view(order_id: str, minutes: int, status: str) -> OrderView:
    at = T0 + timedelta(minutes=minutes)
    return OrderView.model_validate(
        {
            "order_id": order_id,
            "user_id": "u",
            "status": status,
            "currency": "EUR",
            "total_minor": 100 + minutes,
            "item_count": 1,
            "last_event_id": uuid.uuid4(),
            "last_event_type": "order.updated",
            "last_event_at": at,
            "created_at": T0,
            "updated_at": at,
        }
    )


@pytest.fixture
async def store(settings: Settings) -> AsyncIterator[OrderStore]:
    store = OrderStore.from_settings(settings.database)
    yield store
    await store.close()


async def test_upsert_then_get(store: OrderStore) -> None:
    order_id = f"o-{uuid.uuid4()}"
    view = _view(order_id, 1, "pending")
    assert await store.upsert([view]) == 1
    assert await store.get(order_id) == view


async def test_an_older_state_never_overwrites_a_newer_row(store: OrderStore) -> None:
    order_id = f"o-{uuid.uuid4()}"
    newer = _view(order_id, 10, "paid")
    await store.upsert([newer])
    await store.upsert([_view(order_id, 5, "pending")])
    assert await store.get(order_id) == newer


async def test_at_the_same_time_the_further_state_wins_in_any_order(store: OrderStore) -> None:
    """Two events of one order stamped alike: the row keeps the one further along the
    lifecycle, as the table and a batch do (`OrderView.version`), whichever is written last."""
    for first, second in (("paid", "pending"), ("pending", "paid")):
        order_id = f"o-{uuid.uuid4()}"
        await store.upsert([_view(order_id, 5, first)])
        await store.upsert([_view(order_id, 5, second)])
        found = await store.get(order_id)
        assert found is not None
        assert found.status == "paid", (first, second)


async def test_a_batch_with_several_states_of_one_order_keeps_the_newest(store: OrderStore) -> None:
    order_id = f"o-{uuid.uuid4()}"
    newest = _view(order_id, 3, "fulfilled")
    batch = [_view(order_id, 1, "pending"), newest, _view(order_id, 2, "paid")]
    assert await store.upsert(batch) == 1
    assert await store.get(order_id) == newest


async def test_large_batches_are_split_into_statements(settings: Settings) -> None:
    small = settings.model_copy(
        update={"database": settings.database.model_copy(update={"batch_rows": 7})}
    )
    store = OrderStore.from_settings(small.database)
    try:
        views = [_view(f"o-{uuid.uuid4()}", 1, "pending") for _ in range(30)]
        assert await store.upsert(views) == 30
        assert await store.get(views[-1].order_id) == views[-1]
    finally:
        await store.close()


async def test_unknown_order_is_none(store: OrderStore) -> None:
    assert await store.get(f"missing-{uuid.uuid4()}") is None


async def test_unreachable_database_is_a_retriable_service_error(settings: Settings) -> None:
    database = settings.database.model_copy(
        update={"url": SecretStr("postgresql+asyncpg://tributary:tributary@127.0.0.1:1/tributary")}
    )
    store = OrderStore.from_settings(database)
    try:
        with pytest.raises(ServiceUnavailableError) as caught:
            await store.ping()
        assert caught.value.service == "postgresql"
    finally:
        await store.close()
