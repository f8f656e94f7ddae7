"""POST /v1/webhooks/orders against the real Kafka and Redis."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from aiohttp.test_utils import TestClient

from api.families import event_id_for
from streams.settings import Settings
from tests.integration.api.support import (
    decoded,
    order_webhook,
    orders_records,
    post_order,
)
from tests.integration.kafka_io import topic_catalog

Client = TestClient[Any, Any]


async def test_a_signed_webhook_is_accepted_only_once_it_is_in_kafka(
    client: Client, settings: Settings
) -> None:
    body = order_webhook(correlation_id="cart-42")
    response = await post_order(client, settings, body, webhook_id="msg_first")
    assert response.status == 202
    answer = await response.json()
    event_id = event_id_for("orders", "msg_first")
    topic = topic_catalog(settings).orders_events.name
    assert answer["status"] == "accepted"
    assert answer["event_id"] == str(event_id)
    assert answer["topic"] == topic

    [record] = await orders_records(settings)
    assert (record.topic, record.partition, record.offset) == (
        topic,
        answer["partition"],
        answer["offset"],
    )
    assert record.key == body["order"]["id"].encode()
    assert dict(record.headers)["event_type"] == b"order.created"
    event = decoded(record)
    assert event.event_id == event_id
    assert event.event_type == "order.created"
    assert event.source == "webhook:orders"
    assert event.correlation_id == "cart-42"
    assert event.payload.id == body["order"]["id"]


async def test_a_uuid_webhook_id_becomes_the_event_id(client: Client, settings: Settings) -> None:
    webhook_id = str(uuid.uuid4())
    response = await post_order(client, settings, webhook_id=webhook_id)
    assert response.status == 202
    [record] = await orders_records(settings)
    assert str(decoded(record).event_id) == webhook_id


async def test_a_redelivered_webhook_is_a_duplicate_and_produces_nothing(
    client: Client, settings: Settings
) -> None:
    body = order_webhook()
    first = await post_order(client, settings, body, webhook_id="msg_again")
    second = await post_order(client, settings, body, webhook_id="msg_again")
    assert (first.status, second.status) == (202, 200)
    accepted, duplicate = await first.json(), await second.json()
    assert duplicate["status"] == "duplicate"
    assert duplicate["event_id"] == accepted["event_id"]
    assert (duplicate["partition"], duplicate["offset"]) == (
        accepted["partition"],
        accepted["offset"],
    )
    assert len(await orders_records(settings)) == 1


async def test_concurrent_copies_of_one_webhook_produce_exactly_one_record(
    client: Client, settings: Settings
) -> None:
    body = order_webhook()
    copies = 20
    responses = await asyncio.gather(
        *(post_order(client, settings, body, webhook_id="msg_burst") for _ in range(copies))
    )
    statuses = sorted(response.status for response in responses)
    assert statuses == [200] * (copies - 1) + [202]
    event_ids = {(await response.json())["event_id"] for response in responses}
    assert event_ids == {str(event_id_for("orders", "msg_burst"))}
    assert len(await orders_records(settings)) == 1


async def test_different_webhooks_are_all_produced(client: Client, settings: Settings) -> None:
    responses = [await post_order(client, settings) for _ in range(3)]
    assert [response.status for response in responses] == [202, 202, 202]
    assert len(await orders_records(settings)) == 3
