"""`tributary trace` on the real Kafka and PostgreSQL: one causing event's flow, in time order."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta

from pydantic import BaseModel

from schemas.orders import OrderView
from streams.kafka.wire import encode
from streams.settings import Settings
from streams.stores.delivery_store import DeliveryStore, DeliveryValues
from streams.stores.order_store import OrderStore
from tests.integration.cli.support import cli
from tests.integration.kafka_io import kafka_producer
from tests.unit.streams.cli.trace_factories import event, events_window


async def produce_in_order(settings: Settings, records: list[tuple[str, BaseModel]]) -> int:
    """Each record on its topic, Kafka timestamps one second apart from a minute ago."""
    start_ms = int(time.time() * 1000) - 60_000
    async with kafka_producer(settings) as producer:
        for index, (topic, value) in enumerate(records):
            await producer.send_and_wait(
                settings.topic_prefix + topic, encode(value), timestamp_ms=start_ms + index * 1000
            )
    return start_ms


def delivery_row(notification_id: str, at: datetime) -> DeliveryValues:
    return DeliveryValues(
        notification_id=notification_id,
        user_id="usr_42",
        channel="email",
        category="orders",
        template="order-shipped",
        state="delivered",
        state_rank=5,
        state_at=at,
        reason=None,
        last_error=None,
        attempts=1,
        provider="sendgrid",
        provider_message_id="msg-1",
        caused_at=at,
        queued_at=at,
        delivered_at=at,
        created_at=at,
        updated_at=at,
    )


async def test_trace_prints_the_cause_its_notification_receipt_window_and_views_in_order(
    settings: Settings,
) -> None:
    cid, nid = f"cart-{uuid.uuid4().hex[:8]}", f"ntf-{uuid.uuid4().hex[:8]}"
    order_id = f"ord-{uuid.uuid4().hex[:8]}"
    paid = event("order.paid", 90, cid, id=order_id)
    about = {"notification_id": nid}
    records: list[tuple[str, BaseModel]] = [
        ("orders.events", event("order.created", 80, "another-cart")),
        ("orders.events", paid),
        ("notifications.requests", event("notification.requested", 91, cid, **about)),
        ("notifications.dispatch", event("notification.dispatch-requested", 92, cid, **about)),
        ("notifications.status", event("notification.status-changed", 93, nid, **about)),
        ("notifications.receipts", event("notification.receipt-received", 94, nid, **about)),
        ("analytics.events", events_window("orders", 60, 60)),
        ("analytics.events", events_window("users", 60, 60)),
    ]
    start_ms = await produce_in_order(settings, records)
    store = OrderStore.from_settings(settings.database)
    updated_at = datetime.fromtimestamp(start_ms / 1000 + 30, UTC)
    view = OrderView(
        order_id=order_id,
        user_id="usr_42",
        status="paid",
        currency="EUR",
        total_minor=4998,
        item_count=3,
        last_event_id=paid.event_id,
        last_event_type="order.paid",
        last_event_at=paid.occurred_at,
        created_at=paid.occurred_at - timedelta(seconds=10),
        updated_at=updated_at,
    )
    try:
        await store.upsert([view])
    finally:
        await store.close()
    deliveries = DeliveryStore.from_settings(settings.database)
    try:
        await deliveries.write([delivery_row(nid, updated_at)], [])
    finally:
        await deliveries.close()

    traced = await cli(settings, "trace", cid)

    assert traced.code == 0, traced.stderr
    # Each view right after the flow's latest record about its key.
    assert [line.get("topic") or line["view"] for line in traced.lines] == [
        "orders.events",
        "orders",
        "notifications.requests",
        "notifications.dispatch",
        "notifications.status",
        "notifications.receipts",
        "notification_deliveries",
        "analytics.events",
    ]
    cause, row, *_, delivery, window = traced.lines
    assert (delivery["key"], delivery["row"]["state"]) == (nid, "delivered")
    assert delivery["at"] == traced.lines[5]["at"]
    assert cause["event_id"] == str(paid.event_id)
    assert cause["correlation_id"] == cid
    assert {line.get("notification_id") for line in traced.lines[2:6]} == {nid}
    assert window["window"]["family"] == "orders"
    assert row == {
        "at": cause["at"],  # right after the flow's latest record about the order
        "view": "orders",
        "key": order_id,
        "row": view.model_dump(mode="json"),
    }
    assert "1 on orders.events" in traced.stderr
    assert "2 view rows" in traced.stderr


async def test_trace_without_views_reads_no_database_and_an_unknown_id_finds_nothing(
    settings: Settings,
) -> None:
    cid = f"cart-{uuid.uuid4().hex[:8]}"
    await produce_in_order(settings, [("orders.events", event("order.paid", 1, cid))])

    topics_only = await cli(settings, "trace", cid, "--no-views")
    nothing = await cli(settings, "trace", "no-such-correlation-id")

    assert topics_only.code == 0, topics_only.stderr
    assert [line["topic"] for line in topics_only.lines] == ["orders.events"]
    assert "0 view rows" in topics_only.stderr
    assert nothing.code == 0, nothing.stderr
    assert nothing.lines == []
    assert "no record carries it (1 records read)" in nothing.stderr
