"""The worker process on the real Kafka and PostgreSQL: events in, rows and dead letters out."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import aiohttp
from aiokafka import AIOKafkaProducer
from aiokafka.structs import ConsumerRecord

from agents.orders.state import merge, to_entry
from streams.settings import Settings
from streams.stores.order_store import OrderStore
from tests.integration.agents.conftest import (
    WorkerProcess,
    eventually,
    new_order_id,
    produce,
    row_where,
)
from tests.integration.kafka_io import earliest_consumer, topic_catalog
from tests.integration.worker_process import OPERATOR_HEADERS
from tests.unit.agents.factories import T0, order_event


async def test_order_events_become_a_row_in_postgresql(
    worker: WorkerProcess, worker_settings: Settings, producer: AIOKafkaProducer, store: OrderStore
) -> None:
    order_id = new_order_id()
    created = order_event(order_id, at_s=0, quantities=(2, 1))
    paid = order_event(order_id, at_s=30, status="paid")
    await produce(producer, worker_settings, created)
    await produce(producer, worker_settings, paid)

    view = await row_where(store, order_id, "is paid", worker, last_event_id=paid.event_id)
    assert view == merge(merge(None, created), paid)
    assert view.created_at == T0


async def test_an_older_event_produced_after_a_newer_one_does_not_overwrite_it(
    worker: WorkerProcess, worker_settings: Settings, producer: AIOKafkaProducer, store: OrderStore
) -> None:
    order_id = new_order_id()
    paid = order_event(order_id, at_s=60, status="paid", total_minor=500)
    await produce(producer, worker_settings, paid)
    await row_where(store, order_id, "is paid", worker, last_event_id=paid.event_id)

    stale = order_event(order_id, at_s=0, status="pending", total_minor=1)
    await produce(producer, worker_settings, stale)
    # The stale event is only visible through the earlier creation time it reveals.
    view = await row_where(store, order_id, "has the earlier created_at", worker, created_at=T0)
    assert (view.status, view.total_minor, view.last_event_id) == ("paid", 500, paid.event_id)
    assert view.last_event_at == T0 + timedelta(seconds=60)


async def first_dead_letter(
    settings: Settings, worker: WorkerProcess
) -> ConsumerRecord[bytes, bytes]:
    catalog = topic_catalog(settings)
    topic = catalog.dead_letters(catalog.orders_events).name
    async with earliest_consumer(settings, topic) as consumer:

        async def probe() -> ConsumerRecord[bytes, bytes] | None:
            batches = await consumer.getmany(timeout_ms=200, max_records=1)
            return next((r for records in batches.values() for r in records), None)

        return await eventually(probe, what=f"a record on {topic}", worker=worker)


async def test_a_poison_record_is_dead_lettered_and_the_next_event_still_materialized(
    worker: WorkerProcess, worker_settings: Settings, producer: AIOKafkaProducer, store: OrderStore
) -> None:
    order_id = new_order_id()
    source = topic_catalog(worker_settings).orders_events.name
    garbage = b"\xff this is not an order event"
    poison = await producer.send_and_wait(source, garbage, key=order_id.encode())
    good = order_event(order_id, at_s=5)
    await produce(producer, worker_settings, good)

    await row_where(store, order_id, "exists", worker, last_event_id=good.event_id)
    letter = await first_dead_letter(worker_settings, worker)
    assert (letter.key, letter.value) == (order_id.encode(), garbage)
    headers = dict(letter.headers)
    assert headers["dlq.error.type"] == b"BadMagicByteError"
    assert headers["dlq.error.message"].startswith(b"first byte is 0xff")
    assert headers["dlq.source.topic"] == source.encode()
    assert headers["dlq.source.partition"] == str(poison.partition).encode()
    assert headers["dlq.source.offset"] == str(poison.offset).encode()

    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{worker.web_url}/agents/materialize_orders/stats/") as response,
    ):
        stats = await response.json()
    assert stats["dead_letters"] == 1
    # Every agent reading the topic sets the record aside; each line names its agent.
    lines = [line for line in json_log_lines(worker) if line["message"].startswith("dead-letter")]
    [line] = [line for line in lines if line.get("agent") == "materialize_orders"]
    assert line["level"] == "warning"
    assert (line["topic"], line["partition"], line["offset"]) == (
        source,
        poison.partition,
        poison.offset,
    )


def json_log_lines(worker: WorkerProcess) -> list[dict[str, Any]]:
    """The worker's log lines (its stderr; stdout has the banner and the ready line), each a
    JSON object."""
    text = worker.log_path.read_text(errors="replace")
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


async def test_the_worker_web_view_serves_a_table_entry(
    worker: WorkerProcess, worker_settings: Settings, producer: AIOKafkaProducer, store: OrderStore
) -> None:
    order_id = new_order_id()
    event = order_event(order_id, at_s=1, status="paid", quantities=(3,))
    await produce(producer, worker_settings, event)
    await row_where(store, order_id, "exists", worker, last_event_id=event.event_id)

    async with aiohttp.ClientSession(headers=OPERATOR_HEADERS) as http:
        async with http.get(f"{worker.web_url}/v1/tables/orders/{order_id}") as response:
            assert response.status == 200
            assert (await response.json())["value"] == to_entry(merge(None, event))
        async with http.get(f"{worker.web_url}/v1/tables/orders/{new_order_id()}") as response:
            assert response.status == 404
            assert response.content_type == "application/problem+json"
            problem = await response.json()
            assert (problem["status"], problem["title"]) == (404, "Not Found")
        async with http.get(f"{worker.web_url}/v1/tables") as response:
            listed = await response.json()
            assert "orders" in [table["name"] for table in listed["tables"]]


async def test_a_started_worker_is_live_and_ready_with_each_check_named(
    worker: WorkerProcess,
) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{worker.web_url}/health/live") as live:
            assert live.status == 200
        async with http.get(f"{worker.web_url}/health/ready") as ready:
            assert ready.status == 200
            body = await ready.json()
    checks = {"assigned": "ok", "tables": "ok", "stall": "ok", "providers": "ok"}
    assert body == {"status": "ready", "checks": checks}
