"""`GET /v1/orders` (filters, keyset pages) and the problem answers of the order reads."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import pytest
from aiohttp.test_utils import TestClient

from schemas.orders import OrderStatus, OrderView
from streams.settings import Settings
from streams.stores.order_store import OrderStore

Client = TestClient[Any, Any]
STATUSES: tuple[OrderStatus, ...] = ("pending", "paid", "fulfilled", "cancelled", "refunded")


def _view(n: int, user_id: str, base: datetime) -> OrderView:
    at = base + timedelta(seconds=n // 2)  # two orders per second: the id breaks the tie
    return OrderView(
        order_id=f"o-{n:03d}-{uuid.uuid4().hex[:8]}",
        user_id=user_id,
        status=STATUSES[n % 5],
        currency="EUR",
        total_minor=100 + n,
        item_count=1,
        last_event_id=uuid.uuid4(),
        last_event_type="order.created",
        last_event_at=at,
        created_at=at,
        updated_at=at,
    )


async def _pages(client: Client, params: dict[str, str]) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    query = dict(params)
    while True:
        response = await client.get("/v1/orders?" + urlencode(query))
        assert response.status == 200, await response.text()
        body = await response.json()
        items += body["items"]
        if body["next_cursor"] is None:
            return items
        query["cursor"] = body["next_cursor"]


async def test_filters_combine_and_pages_walk_newest_first(
    client: Client, settings: Settings
) -> None:
    base = datetime(2031, 1, 1, tzinfo=UTC) + timedelta(days=uuid.uuid4().int % 100_000)
    users = [f"u-{uuid.uuid4().hex[:10]}" for _ in range(2)]
    views = [_view(n, users[n % 2 if n < 200 else 0], base) for n in range(300)]
    store = OrderStore.from_settings(settings.database)
    try:
        await store.upsert(views)
    finally:
        await store.close()

    def newest_first(chosen: list[OrderView]) -> list[str]:
        ordered = sorted(chosen, key=lambda v: (v.created_at, v.order_id), reverse=True)
        return [v.order_id for v in ordered]

    mine = [v for v in views if v.user_id == users[0]]
    found = await _pages(client, {"user_id": users[0], "limit": "17"})
    assert [item["order_id"] for item in found] == newest_first(mine)

    paid = [v for v in mine if v.status == "paid"]
    found = await _pages(client, {"user_id": users[0], "status": "paid", "limit": "7"})
    assert [item["order_id"] for item in found] == newest_first(paid)

    start, end = base + timedelta(seconds=30), base + timedelta(seconds=90)
    in_range = [v for v in mine if v.status == "paid" and start <= v.created_at < end]
    params = {
        "user_id": users[0],
        "status": "paid",
        "from": start.isoformat(),
        "to": end.isoformat(),
        "limit": "3",
    }
    found = await _pages(client, params)
    assert [item["order_id"] for item in found] == newest_first(in_range)
    assert OrderView.model_validate(found[0]) in views

    # Without a user: every order of the range, whoever placed it.
    params = {"from": base.isoformat(), "to": (base + timedelta(seconds=150)).isoformat()}
    found = await _pages(client, params | {"limit": "500"})
    assert [item["order_id"] for item in found] == newest_first(views)


@pytest.mark.parametrize("order_id", ["o-unknown", "o%00nul", "o" * 200])
async def test_the_history_of_an_unknown_order_is_a_404(client: Client, order_id: str) -> None:
    for path in (f"/v1/orders/{order_id}/history", f"/v1/orders/{order_id}"):
        response = await client.get(path)
        assert response.status == 404
        assert response.content_type == "application/problem+json"


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/v1/orders?limit=0", "limit"),
        ("/v1/orders?limit=501", "limit"),
        ("/v1/orders?limit=ten", "limit"),
        ("/v1/orders?limit=%C2%B2", "limit"),
        ("/v1/orders?from=0001-01-01T00:00:00%2B01:00", "from"),
        ("/v1/stats/orders?to=0001-01-01T12:00:00Z", "to"),
        ("/v1/stats/orders?from=2024-01-01T00:00:00Z&to=2026-01-01T00:00:00Z", "from"),
        ("/v1/orders?status=shipped", "status"),
        ("/v1/orders?user_id=not%20an%20id", "user_id"),
        ("/v1/orders?from=yesterday", "from"),
        ("/v1/orders?to=2026-01-01T00:00:00", "to"),
        ("/v1/orders?from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z", "from"),
        ("/v1/orders?cursor=bm90LWEtY3Vyc29y", "cursor"),
        ("/v1/orders?cursor=%%%", "cursor"),
        ("/v1/stats/orders?currency=XYZ", "currency"),
        ("/v1/stats/orders?currency=eur", "currency"),
        ("/v1/stats/orders?from=2026-13-01T00:00:00Z", "from"),
        ("/v1/stats/orders?from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z", "from"),
    ],
)
async def test_a_bad_parameter_is_a_422_naming_it(client: Client, path: str, field: str) -> None:
    response = await client.get(path)
    assert response.status == 422
    assert response.content_type == "application/problem+json"
    body = await response.json(content_type=None)
    assert [error["field"] for error in body["errors"]] == [field]
