"""The worker web's operator views and `/metrics`, on one real worker process."""

from __future__ import annotations

from typing import Any

import aiohttp
from aiokafka import AIOKafkaProducer
from aiokafka.structs import RecordMetadata
from prometheus_client.parser import text_string_to_metric_families

from agents.orders.pipeline import AGENT_NAME
from agents.orders.state import merge, to_entry
from streams.kafka.wire import encode
from streams.settings import Settings
from streams.stores.order_store import OrderStore
from tests.integration.agents.conftest import new_order_id, produce, row_where
from tests.integration.kafka_io import topic_catalog
from tests.integration.worker_process import OPERATOR_HEADERS, WorkerProcess, eventually
from tests.unit.agents.factories import order_event

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


async def scrape(worker: WorkerProcess) -> Samples:
    async with aiohttp.ClientSession() as http, http.get(f"{worker.web_url}/metrics") as response:
        assert response.status == 200
        assert response.content_type == "text/plain"
        text = await response.text()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def total(samples: Samples, name: str, **labels: str) -> float:
    wanted = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and wanted <= set(ls))


async def test_operator_views_refuse_a_missing_or_wrong_token(worker: WorkerProcess) -> None:
    async with aiohttp.ClientSession() as http:
        for path in ("/v1/tables", "/v1/tables/orders/o-1", "/v1/consumer"):
            for headers in ({}, {"Authorization": "Bearer not-the-token"}):
                async with http.get(worker.web_url + path, headers=headers) as response:
                    assert response.status == 401
                    assert response.headers["WWW-Authenticate"] == "Bearer"
                    assert response.content_type == "application/problem+json"
                    assert (await response.json(content_type=None))["status"] == 401


async def test_an_unknown_table_is_a_404_problem(worker: WorkerProcess) -> None:
    async with (
        aiohttp.ClientSession(headers=OPERATOR_HEADERS) as http,
        http.get(f"{worker.web_url}/v1/tables/no-such-table/k") as response,
    ):
        assert response.status == 404
        assert "no-such-table" in (await response.json(content_type=None))["detail"]


async def test_the_consumer_view_says_what_the_consumer_is_doing(
    worker: WorkerProcess, worker_settings: Settings
) -> None:
    async with (
        aiohttp.ClientSession(headers=OPERATOR_HEADERS) as http,
        http.get(f"{worker.web_url}/v1/consumer") as response,
    ):
        assert response.status == 200
        body = await response.json()
    assert body["worker"] == worker.web_url
    state = "\n".join(body["state"])
    partitions = worker_settings.kafka.partitions
    orders = topic_catalog(worker_settings).for_topic("orders.events").name
    # One worker owns every partition, by Faust's account and by aiokafka's, and fetches them.
    assert "consumer flow active=True" in state
    assert f"{orders}[{partitions - 1}] end=" in state
    assert "faust_active=True" in state
    assert "kafka_paused=False" in state
    assert "_fetcher@faust/transport/consumer.py" in state  # where the fetcher task waits


async def tables(worker: WorkerProcess) -> dict[str, Any]:
    async with (
        aiohttp.ClientSession(headers=OPERATOR_HEADERS) as http,
        http.get(f"{worker.web_url}/v1/tables") as response,
    ):
        assert response.status == 200
        body: dict[str, Any] = await response.json()
        return body


async def test_the_table_list_shows_every_partition_owned_and_its_keys(
    worker: WorkerProcess, worker_settings: Settings, producer: AIOKafkaProducer
) -> None:
    order_ids = [new_order_id() for _ in range(12)]
    for order_id in order_ids:
        await produce(producer, worker_settings, order_event(order_id))

    async def listed() -> dict[str, Any] | None:
        body = await tables(worker)
        orders = next(t for t in body["tables"] if t["name"] == "orders")
        return body if orders["keys"] is not None and orders["keys"] >= len(order_ids) else None

    body = await eventually(listed, what="orders counted in /v1/tables", worker=worker)
    assert body["workers"] == [worker.web_url]
    assert body["unreachable"] == []
    orders = next(t for t in body["tables"] if t["name"] == "orders")
    assert orders["windowed"] is False
    assert [row["partition"] for row in orders["partitions"]] == list(
        range(worker_settings.kafka.partitions)
    )
    assert {row["worker"] for row in orders["partitions"]} == {worker.web_url}
    assert orders["keys"] == sum(row["keys"] for row in orders["partitions"])


async def caught_up(worker: WorkerProcess, written: RecordMetadata) -> Samples:
    """Metrics once the worker committed past `written` and every partition it reads of that
    topic shows lag 0: all acknowledged, so counted (an event is counted when acknowledged)."""

    def position(samples: Samples) -> float:
        labels = (("partition", str(written.partition)), ("topic", written.topic))
        return samples.get(("faust_topic_partition_offset_commited", labels), -1)

    async def probe() -> Samples | None:
        samples = await scrape(worker)
        lags = [
            value
            for (name, labels), value in samples.items()
            if name == "tributary_worker_consumer_lag" and ("topic", written.topic) in labels
        ]
        done = position(samples) > written.offset and all(value == 0 for value in lags)
        return samples if done else None

    return await eventually(probe, what=f"committed past {written}", worker=worker)


async def send(producer: AIOKafkaProducer, topic: str, key: str, value: bytes) -> RecordMetadata:
    return await producer.send_and_wait(topic, value, key=key.encode())


async def test_metrics_count_events_dead_letters_lag_and_table_keys(
    worker: WorkerProcess, worker_settings: Settings, producer: AIOKafkaProducer, store: OrderStore
) -> None:
    source = topic_catalog(worker_settings).orders_events.name
    warmup = order_event(new_order_id())
    order_id = warmup.payload.id
    written = await send(producer, source, order_id, encode(warmup))
    before = await caught_up(worker, written)  # earlier tests' records included

    # Same key, same partition: committed past the last means committed past both.
    await send(producer, source, order_id, b"\xff not an event")
    event = order_event(order_id, at_s=1)
    written = await send(producer, source, order_id, encode(event))
    await row_where(store, order_id, "updated", worker, last_event_id=event.event_id)
    after = await caught_up(worker, written)

    def grown(name: str) -> float:
        return total(after, name, agent=AGENT_NAME) - total(before, name, agent=AGENT_NAME)

    assert grown("tributary_worker_events_total") == 2
    assert grown("tributary_worker_dead_letters_total") == 1
    assert grown("tributary_worker_event_latency_seconds_count") == 2
    # This test's order at least (earlier tests' orders too when the whole module runs).
    assert total(after, "tributary_worker_table_keys", table="orders") >= 1
    assert total(after, "faust_messages_received_total") >= 3


async def test_an_entry_names_the_worker_that_answered(
    worker: WorkerProcess, worker_settings: Settings, producer: AIOKafkaProducer, store: OrderStore
) -> None:
    order_id = new_order_id()
    event = order_event(order_id, at_s=2, status="paid")
    await produce(producer, worker_settings, event)
    await row_where(store, order_id, "exists", worker, last_event_id=event.event_id)
    async with (
        aiohttp.ClientSession(headers=OPERATOR_HEADERS) as http,
        http.get(f"{worker.web_url}/v1/tables/orders/{order_id}") as response,
    ):
        body = await response.json()
    assert body == {
        "table": "orders",
        "key": order_id,
        "worker": worker.web_url,
        "value": to_entry(merge(None, event)),
    }
