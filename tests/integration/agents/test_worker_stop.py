"""A worker stops cleanly when told to (SIGTERM), whatever it is in the middle of.

A worker holding records Kafka will not take: Faust flushes its producer when the worker stops,
and a record Kafka refuses (its topic gone, or Kafka itself unreachable) is retried for as long
as the producer's request timeout allows: Faust's default is 20 minutes, longer than any
orchestrator waits. The worker bounds it with `TRIBUTARY_WORKER_SEND_TIMEOUT_S`. Deleting the
topic the metrics tick writes to makes such a record on demand (the broker does not create topics
on its own here).

A worker in the middle of a stream: every agent's batches wait for the same changelog sends
before they are acknowledged, the stop writes what is held, and Faust stops its agents one after
another, so the first one stopped must not take the others' waits down with it (a CI run once
saw the worker exit 1 that way).
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

from aiokafka import AIOKafkaProducer

from streams.kafka.topic_admin import delete_topics_blocking
from streams.kafka.wire import encode
from streams.settings import Settings
from streams.stores.order_store import OrderStore
from tests.integration.agents.conftest import new_order_id, row_where
from tests.integration.kafka_io import kafka_producer, topic_catalog
from tests.integration.worker_process import (
    WorkerProcess,
    eventually,
    make_worker_settings,
    own_topics,
)
from tests.unit.agents.factories import order_event

REFUSED = "UnknownTopicOrPartitionError"
# Stops of a worker busy with a stream of orders: each is a fresh chance for the stop order to
# catch agents waiting for changelog sends.
BUSY_STOPS = 3
# 200 orders/s: enough to keep every agent busy, well within what a worker keeps up with.
ORDERS_PER_SEND = 20
SEND_INTERVAL_S = 0.1


async def test_a_worker_with_records_kafka_refuses_stops_within_its_send_timeout(
    stack_settings: Settings, tmp_path: Path
) -> None:
    base = make_worker_settings(stack_settings, tmp_path)
    settings = base.model_copy(
        update={
            "worker": base.worker.model_copy(update={"send_timeout_s": 5.0}),
            "metrics": base.metrics.model_copy(update={"tick_s": 0.5}),
        }
    )
    with own_topics(settings):
        worker = WorkerProcess(settings, tmp_path / "worker.log")
        try:
            await asyncio.to_thread(worker.wait_ready)
            partials = topic_catalog(settings).metrics_partials.name
            await asyncio.to_thread(delete_topics_blocking, settings.kafka, [partials])

            async def refused() -> bool | None:
                return True if REFUSED in worker.log_tail(20_000) else None

            await eventually(refused, what="a tick Kafka refuses", worker=worker)
        finally:
            # Killed (and failing below) if it does not stop within the deadline (30 s).
            returncode = await asyncio.to_thread(worker.stop)
        assert returncode == 0, worker.log_tail()


async def send_orders(producer: AIOKafkaProducer, settings: Settings, first_id: str) -> None:
    """A steady stream of orders (each feeds the orders, metrics and notification agents), the
    first with `first_id`; runs until cancelled."""
    topic = topic_catalog(settings).orders_events.name
    order_ids = iter([first_id])
    while True:
        sends = []
        for _ in range(ORDERS_PER_SEND):
            order_id = next(order_ids, None) or new_order_id()
            value = encode(order_event(order_id))
            sends.append(await producer.send(topic, value, key=order_id.encode()))
        await asyncio.gather(*sends)
        await asyncio.sleep(SEND_INTERVAL_S)  # a pace, not a wait for something


async def test_a_worker_stopped_in_the_middle_of_a_stream_exits_cleanly(
    stack_settings: Settings, tmp_path: Path
) -> None:
    settings = make_worker_settings(stack_settings, tmp_path)
    store = OrderStore.from_settings(settings.database)
    try:
        with own_topics(settings):
            async with kafka_producer(settings) as producer:
                for stop in range(BUSY_STOPS):
                    worker = WorkerProcess(settings, tmp_path / f"worker-{stop}.log")
                    first = new_order_id()
                    sending = asyncio.create_task(send_orders(producer, settings, first))
                    try:
                        await asyncio.to_thread(worker.wait_ready)
                        await row_where(store, first, "materialized", worker)
                    finally:
                        returncode = await asyncio.to_thread(worker.stop)
                        sending.cancel()
                        with contextlib.suppress(asyncio.CancelledError):
                            await sending
                    assert returncode == 0, f"stop {stop}:\n{worker.log_tail()}"
    finally:
        await store.close()  # its pool, also when a stop fails
