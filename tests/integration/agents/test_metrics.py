"""The metrics agent in a real worker: closed windows on analytics.*, read with Confluent's Avro
deserializer through the API's registry; late events within grace; a restart loses no open
window and re-publishes no closed one.

Events are produced in phases, each waiting until the worker's consumer group has committed
every input record (so the next phase's events are folded after the previous ones: they travel
on different topics and partitions, which nothing else orders).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiokafka import AIOKafkaProducer, TopicPartition
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.serialization import MessageField, SerializationContext
from pydantic import BaseModel
from pytest_aiohttp import AiohttpServer

from agents.metrics.pipeline import INPUT_TOPICS
from api.app import create_app
from schemas.contracts import BY_EVENT_TYPE
from streams.kafka.wire import encode
from streams.settings import Settings
from tests.integration.kafka_io import kafka_producer, records_to_end, topic_catalog, uncommitted
from tests.integration.worker_process import (
    OPERATOR_TOKEN,
    WorkerProcess,
    eventually,
    make_worker_settings,
    metrics_clock,
    own_topics,
    running_worker,
)
from tests.unit.agents.metrics_factories import event_at

# A minute boundary two hours AHEAD: the worker's other agents publish events of their own
# (notification statuses, at the wall clock's time) that the metrics agent reads too; those
# must not move this test's watermark. Windows close by event time only (idle is set far away).
T0 = datetime.now(UTC).replace(second=0, microsecond=0) + timedelta(hours=2)
T0_KEY = T0.strftime("%Y-%m-%dT%H:%M:%SZ")
T1_KEY = (T0 + timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
ORDER_KEY = b"ord-metrics-1"  # one partition: these events are folded in the order produced


def event(event_type: str, at_s: float, **payload: Any) -> BaseModel:
    return event_at(event_type, T0 + timedelta(seconds=at_s), **payload)


def order(event_type: str, at_s: float, total_minor: int = 1000) -> BaseModel:
    return event(event_type, at_s, currency="EUR", total_minor=total_minor)


@pytest.fixture
def metrics_settings(stack_settings: Settings, tmp_path: Path) -> Iterator[Settings]:
    base = make_worker_settings(stack_settings, tmp_path / "data")
    settings = base.model_copy(
        update={
            "worker": base.worker.model_copy(update={"store": "rocksdb://"}),
            # No cap on future event times: this test's events are two hours ahead (above).
            "metrics": base.metrics.model_copy(
                update={"grace_s": 30, "idle_s": 3600.0, "tick_s": 1.0, "max_future_s": 0}
            ),
        }
    )
    with own_topics(settings):
        yield settings


@pytest.fixture
async def producer(metrics_settings: Settings) -> AsyncIterator[AIOKafkaProducer]:
    async with kafka_producer(metrics_settings) as producer:
        yield producer


async def produce(
    producer: AIOKafkaProducer, settings: Settings, events: Sequence[BaseModel]
) -> None:
    catalog = topic_catalog(settings)
    for item in events:
        event_type: str = getattr(item, "event_type")  # noqa: B009 - any envelope model
        topic = catalog.for_topic(BY_EVENT_TYPE[event_type].topic).name
        key = ORDER_KEY if event_type.startswith("order.") else b"k-" + event_type.encode()
        await producer.send_and_wait(topic, encode(item), key=key)


async def all_consumed(settings: Settings, worker: WorkerProcess) -> None:
    """Wait until the worker's group has committed every record of the input topics."""
    catalog = topic_catalog(settings)
    partitions = [
        TopicPartition(catalog.for_topic(base).name, p)
        for base in INPUT_TOPICS
        for p in range(settings.kafka.partitions)
    ]

    async def probe() -> bool | None:
        return None if await uncommitted(settings, settings.worker.app_id, partitions) else True

    await eventually(probe, what="the worker consumed every input record", worker=worker)


async def raw_records(settings: Settings, base: str) -> list[tuple[bytes, bytes]]:
    topic = topic_catalog(settings).analytics_output(base).name
    return [(r.key or b"", r.value or b"") for r in await records_to_end(settings, topic)]


def confluent_decode(url: str, topic: str, values: list[bytes]) -> list[dict[str, Any]]:
    """What an analytics consumer does: Confluent's client and Avro deserializer (blocking)."""
    deserializer = AvroDeserializer(SchemaRegistryClient({"url": url}))
    context = SerializationContext(topic, MessageField.VALUE)
    return [deserializer(value, context) for value in values]


class Analytics:
    """The analytics topics of one test, decoded the way an outside consumer would."""

    def __init__(self, settings: Settings, registry_url: str) -> None:
        self.settings = settings
        self.registry_url = registry_url

    async def records(self, base: str) -> list[tuple[str, dict[str, Any]]]:
        found = await raw_records(self.settings, base)
        topic = topic_catalog(self.settings).analytics_output(base).name
        decoded = await asyncio.to_thread(
            confluent_decode, self.registry_url, topic, [value for _, value in found]
        )
        return [(key.decode(), record) for (key, _), record in zip(found, decoded, strict=True)]

    async def window(self, base: str, key: str, worker: WorkerProcess) -> dict[str, Any]:
        async def probe() -> dict[str, Any] | None:
            matching = [record for k, record in await self.records(base) if k == key]
            return matching[0]["payload"] if matching else None

        return await eventually(probe, what=f"{key} on {base}", worker=worker)


async def clock_entry(worker: WorkerProcess) -> dict[str, Any]:
    """The metrics watermark and counters, from the worker's operator table view."""
    headers = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}
    url = f"{worker.web_url}/v1/tables/metrics_clock/clock"
    async with aiohttp.ClientSession() as session, session.get(url, headers=headers) as response:
        assert response.status == 200, await response.text()
        body: dict[str, Any] = (await response.json())["value"]
        return body


async def test_closed_windows_are_published_once_late_events_count_and_a_restart_loses_nothing(
    metrics_settings: Settings,
    producer: AIOKafkaProducer,
    aiohttp_server: AiohttpServer,
    tmp_path: Path,
) -> None:
    settings = metrics_settings
    server = await aiohttp_server(create_app(settings))
    analytics = Analytics(settings, f"http://127.0.0.1:{server.port}/schema-registry")
    with running_worker(settings, tmp_path / "worker-1.log") as worker:
        # Minute 0 of every family, and an event at 80 s: watermark 50 s, nothing closes yet.
        delivered_at_s = 20
        await produce(
            producer,
            settings,
            [
                order("order.created", 1),
                order("order.paid", 5, 1000),
                order("order.paid", 10, 2001),
                event("user.created", 12),
                event("auth.login-failed", 15),
                event("auth.login-succeeded", 16),
                event(
                    "notification.status-changed",
                    delivered_at_s,
                    state="delivered",
                    channel="email",
                    caused_at=T0 + timedelta(seconds=delivered_at_s - 2),
                ),
                order("order.created", 80),
            ],
        )
        await all_consumed(settings, worker)
        # Late by 50 s, but within the 30 s grace of the watermark (80 - 30 = 50 < 60).
        await produce(producer, settings, [order("order.paid", 30, 500)])
        await all_consumed(settings, worker)
        await produce(producer, settings, [order("order.created", 95)])  # watermark 65 s

        minute_0 = await analytics.window("analytics.orders", f"tumbling:60:{T0_KEY}:EUR", worker)
        assert (minute_0["orders_created"], minute_0["orders_paid"]) == (1, 3)
        assert (minute_0["revenue_minor"], minute_0["average_order_value_minor"]) == (3501, 1167)
        assert minute_0["window_start"] == T0
        users = await analytics.window("analytics.events", f"tumbling:60:{T0_KEY}:users", worker)
        assert users["by_type"] == {"user.created": 1}
        auth = await analytics.window("analytics.auth", f"tumbling:60:{T0_KEY}:all", worker)
        assert (auth["logins"], auth["login_failures"]) == (1, 1)
        email = await analytics.window("analytics.delivery", f"tumbling:60:{T0_KEY}:email", worker)
        assert (email["delivered"], email["latency_samples"]) == (1, 1)
        assert email["latency_p50_ms"] == pytest.approx(2000, rel=0.03)

        # Too late now (minute 0 is closed): dropped, and minute 0 is not published again.
        # Minute 1 stays open across a restart of the worker.
        await produce(producer, settings, [order("order.paid", 10, 7), order("order.paid", 100)])
        await all_consumed(settings, worker)

        # Counted where operators see it. (At least: statuses the other agents publish at the
        # wall clock's time, two hours before this test's windows, are dropped as late too.)
        async def dropped() -> int | None:
            return (await clock_entry(worker)).get("dropped_late") or None

        assert await eventually(dropped, what="a late drop counted", worker=worker) >= 1

    with running_worker(settings, tmp_path / "worker-2.log") as worker:
        await produce(producer, settings, [order("order.created", 200)])  # watermark 170 s
        minute_1 = await analytics.window("analytics.orders", f"tumbling:60:{T1_KEY}:EUR", worker)
        assert (minute_1["orders_created"], minute_1["orders_paid"]) == (2, 1)
        assert minute_1["revenue_minor"] == 1000
        keys = [key for key, _ in await analytics.records("analytics.orders")]
        assert len(keys) == len(set(keys)), "a window was published twice"
        assert keys.count(f"tumbling:60:{T0_KEY}:EUR") == 1


async def auth_reports(worker: WorkerProcess, topic: str) -> dict[str, Any] | None:
    clock = await metrics_clock(worker)
    reports = {} if clock is None else clock.get("reports", {})
    found = {s: report for s, report in reports.items() if s.rpartition(":")[0] == topic}
    return found or None


async def test_an_idle_stream_closes_its_last_window_by_the_timer(
    metrics_settings: Settings,
    producer: AIOKafkaProducer,
    aiohttp_server: AiohttpServer,
    tmp_path: Path,
) -> None:
    """Nothing after the event moves the watermark: only idle time (wall clock) closes it."""
    short = metrics_settings.metrics.model_copy(
        update={
            "tumbling_s": 10,
            "hopping_s": 20,
            "hopping_step_s": 10,
            "grace_s": 1,
            "idle_s": 1.0,
            "tick_s": 0.5,
        }
    )
    settings = metrics_settings.model_copy(update={"metrics": short})
    server = await aiohttp_server(create_app(settings))
    analytics = Analytics(settings, f"http://127.0.0.1:{server.port}/schema-registry")
    with running_worker(settings, tmp_path / "worker.log") as worker:
        await produce(producer, settings, [event("auth.logout", 1)])
        window = await analytics.window("analytics.auth", f"tumbling:10:{T0_KEY}:all", worker)
        assert (window["events"], window["by_type"]) == (1, {"auth.logout": 1})
        assert window["window_end"] == T0 + timedelta(seconds=10)
        # The worker's ticks report its auth.events partitions read to their end: none holds.
        auth = topic_catalog(settings).for_topic("auth.events").name
        reports = await eventually(
            lambda: auth_reports(worker, auth), what="a report on auth.events", worker=worker
        )
        partitions = settings.kafka.partitions
        assert len(reports) == partitions, reports  # every one, events or not
        assert {read for _, read, _ in reports.values()} == {True}
