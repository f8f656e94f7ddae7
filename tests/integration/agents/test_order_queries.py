"""The orders query side on a real worker: events produced to `orders.events` come back through
the API as the order list, an order's audit trail (a stale event marked ignored), and order
statistics summed from the closed windows the metrics agent published on `analytics.orders`."""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from aiokafka import AIOKafkaProducer
from pytest_aiohttp import AiohttpClient

from api.app import create_app
from schemas.orders import OrderEvent, OrderStatus
from streams.settings import Settings
from tests.integration.agents.conftest import produce
from tests.integration.kafka_io import topic_catalog
from tests.integration.worker_process import (
    WorkerProcess,
    eventually,
    make_worker_settings,
    metrics_clock,
    own_topics,
)

Client = TestClient[Any, Any]
EVENT_TYPE = {
    "pending": "order.created",
    "paid": "order.paid",
    "fulfilled": "order.fulfilled",
    "cancelled": "order.cancelled",
    "refunded": "order.refunded",
}
# This module's own minutes, days ahead: no other test's windows fall there (the stats table is
# shared), and the worker's own events (at the wall clock) never close them early.
T0 = datetime.now(UTC).replace(second=0, microsecond=0) + timedelta(
    days=3, minutes=random.randrange(100_000)
)


async def orders_folded(worker: WorkerProcess, settings: Settings, count: int) -> bool | None:
    """True once the metrics aggregator's clock has folded `count` records of orders.events."""
    clock = await metrics_clock(worker)
    if clock is None:
        return None
    offsets = clock.get("offsets", {})
    topic = topic_catalog(settings).orders_events.name
    folded = sum(n for source, n in offsets.items() if source.startswith(f"{topic}:"))
    return True if folded >= count else None


@pytest.fixture(scope="module")
def worker_settings(
    stack_settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Settings]:
    base = make_worker_settings(stack_settings, tmp_path_factory.mktemp("worker-data"))
    settings = base.model_copy(
        update={
            "metrics": base.metrics.model_copy(
                update={"grace_s": 5, "idle_s": 3600.0, "tick_s": 1.0, "max_future_s": 0}
            )
        }
    )
    with own_topics(settings):
        yield settings


@pytest.fixture
async def api(
    aiohttp_client: AiohttpClient, worker_settings: Settings, api_headers: dict[str, str]
) -> Client:
    return await aiohttp_client(create_app(worker_settings), headers=api_headers)


def order_event(
    order_id: str,
    status: OrderStatus,
    at: datetime,
    *,
    user_id: str = "u-1",
    currency: str = "EUR",
    total_minor: int = 1000,
) -> OrderEvent:
    event_id = uuid.uuid4()
    return OrderEvent.model_validate(
        {
            "event_id": event_id,
            "event_type": EVENT_TYPE[status],
            "occurred_at": at,
            "ingested_at": at + timedelta(seconds=1),
            "source": "test",
            "correlation_id": f"corr-{event_id}",
            "payload": {
                "id": order_id,
                "user_id": user_id,
                "status": status,
                "currency": currency,
                "total_minor": total_minor,
                "items": [{"sku": "sku-1", "quantity": 1, "unit_price_minor": total_minor}],
            },
        }
    )


async def get_json(api: Client, path: str) -> Any:
    response = await api.get(path)
    assert response.status == 200, await response.text()
    return await response.json()


async def test_the_history_lists_every_event_and_marks_the_stale_one(
    worker: WorkerProcess, producer: AIOKafkaProducer, worker_settings: Settings, api: Client
) -> None:
    order_id = f"o-{uuid.uuid4()}"
    created = order_event(order_id, "pending", T0)
    paid = order_event(order_id, "paid", T0 + timedelta(seconds=20))
    # Happened before the payment, arrives after it: applied to the trail, but ignored.
    late = order_event(order_id, "cancelled", T0 + timedelta(seconds=10))
    for event in (created, paid, late):
        await produce(producer, worker_settings, event)

    async def probe() -> list[dict[str, Any]] | None:
        response = await api.get(f"/v1/orders/{order_id}/history")
        events: list[dict[str, Any]] = (await response.json())["events"] if response.ok else []
        return events if len(events) == 3 else None

    events = await eventually(probe, what=f"the history of {order_id}", worker=worker)
    assert [(e["event_id"], e["status"], e["ignored"]) for e in events] == [
        (str(created.event_id), "pending", False),
        (str(late.event_id), "paid", True),
        (str(paid.event_id), "paid", False),
    ]
    assert events[1]["event_type"] == "order.cancelled"
    assert events[1]["event_status"] == "cancelled"
    assert events[1]["correlation_id"] == late.correlation_id
    assert events[1]["source"] == "test"
    assert datetime.fromisoformat(events[1]["ingested_at"]) == late.ingested_at
    view = await get_json(api, f"/v1/orders/{order_id}")
    assert view["status"] == "paid"


async def test_order_stats_match_the_orders_sent(
    worker: WorkerProcess, producer: AIOKafkaProducer, worker_settings: Settings, api: Client
) -> None:
    start = T0 + timedelta(minutes=10)
    sent: list[OrderEvent] = []
    expected: dict[str, dict[str, int]] = {}
    for n in range(24):
        currency = ("CHF", "SEK")[n % 2]
        order_id = f"o-{uuid.uuid4()}"
        total = 500 + 37 * n
        at = start + timedelta(seconds=2 * n)
        counts = expected.setdefault(
            currency, {"created": 0, "paid": 0, "revenue": 0, "cancelled": 0, "refunds": 0}
        )
        sent.append(order_event(order_id, "pending", at, currency=currency, total_minor=total))
        counts["created"] += 1
        if n % 3 != 0:
            sent.append(
                order_event(
                    order_id,
                    "paid",
                    at + timedelta(seconds=1),
                    currency=currency,
                    total_minor=total,
                )
            )
            counts["paid"] += 1
            counts["revenue"] += total
            if n % 4 == 1:
                sent.append(
                    order_event(
                        order_id,
                        "refunded",
                        at + timedelta(seconds=1, milliseconds=500),
                        currency=currency,
                        total_minor=total,
                    )
                )
                counts["refunds"] += 1
        else:
            sent.append(
                order_event(
                    order_id,
                    "cancelled",
                    at + timedelta(seconds=1),
                    currency=currency,
                    total_minor=total,
                )
            )
            counts["cancelled"] += 1
    for event in sent:
        await produce(producer, worker_settings, event)
    # Only once the aggregator has folded every one of them (the watermark is the latest event
    # of any partition: sent earlier, the closer could overtake another partition's orders):
    # moves event time past the windows and their grace, so they close.
    await eventually(
        lambda: orders_folded(worker, worker_settings, len(sent)),
        what="the orders folded by the metrics aggregator",
        worker=worker,
    )
    await produce(
        producer,
        worker_settings,
        order_event(f"o-{uuid.uuid4()}", "pending", start + timedelta(minutes=3)),
    )

    end = start + timedelta(minutes=1)
    path = f"/v1/stats/orders?from={start.isoformat()}&to={end.isoformat()}".replace("+", "%2B")

    async def probe() -> list[dict[str, Any]] | None:
        found: list[dict[str, Any]] = (await get_json(api, path))["currencies"]
        return found if {c["currency"] for c in found} == set(expected) else None

    found = await eventually(probe, what="order stats of both currencies", worker=worker)
    for stats in found:
        counts = expected[stats["currency"]]
        assert stats["orders_created"] == counts["created"]
        assert stats["orders_paid"] == counts["paid"]
        assert stats["revenue_minor"] == counts["revenue"]
        assert stats["average_order_value_minor"] == counts["revenue"] // counts["paid"]
        assert stats["cancellations"] == counts["cancelled"]
        assert stats["refunds"] == counts["refunds"]
        assert (stats["covered_from"], stats["covered_to"]) == (start.isoformat(), end.isoformat())
    [chf] = (await get_json(api, path + "&currency=CHF"))["currencies"]
    assert chf["currency"] == "CHF"
