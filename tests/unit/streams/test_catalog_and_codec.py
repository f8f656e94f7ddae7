from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from schemas.orders import Order, OrderEvent, OrderItem
from streams.catalog import TopicCatalog
from streams.codec import UndecodableEventError, decode_event, encode_event
from streams.errors import PoisonError
from streams.settings import Settings


def test_topic_names_carry_the_prefix_and_dead_letters_follow_their_source() -> None:
    catalog = TopicCatalog(Settings(topic_prefix="t1-"))
    assert catalog.orders_events.name == "t1-orders.events"
    assert catalog.dead_letters(catalog.orders_events).name == "t1-orders.events.dlq"
    assert {spec.name for spec in catalog.all()} == {"t1-orders.events", "t1-orders.events.dlq"}


def test_partitions_and_replication_come_from_settings() -> None:
    settings = Settings.model_validate({"kafka": {"partitions": 9, "replication_factor": 3}})
    spec = TopicCatalog(settings).orders_events
    assert (spec.partitions, spec.replication_factor) == (9, 3)
    assert spec.configs["cleanup.policy"] == "delete"


def _event() -> OrderEvent:
    now = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)
    order = Order(
        id="o1",
        user_id="u1",
        status="paid",
        currency="EUR",
        total_minor=10,
        items=[OrderItem(sku="s", quantity=1, unit_price_minor=10)],
    )
    return OrderEvent(
        event_id=uuid.uuid4(),
        event_type="order.paid",
        occurred_at=now,
        ingested_at=now,
        source="test",
        correlation_id="c",
        payload=order,
    )


def test_events_round_trip() -> None:
    event = _event()
    assert decode_event(encode_event(event), OrderEvent) == event


@pytest.mark.parametrize("raw", [None, b"", b"\x00\x01garbage", b'{"event_id": "nope"}'])
def test_undecodable_records_are_poison(raw: bytes | None) -> None:
    with pytest.raises(UndecodableEventError) as caught:
        decode_event(raw, OrderEvent)
    assert isinstance(caught.value, PoisonError)
