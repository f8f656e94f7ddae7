"""One real worker process per test module, on the module's own topics and consumer group.

A module that needs other settings overrides `worker_settings` only: `worker`, `producer` and
`store` follow it.

Starting a worker (joining the group, creating the changelog topic, recovering the table) is the
slow part, so a module shares one; its tests stay independent by using their own order ids.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
from aiokafka import AIOKafkaProducer

from schemas.orders import OrderEvent, OrderView
from streams.kafka.wire import encode
from streams.settings import Settings
from streams.stores.order_store import OrderStore
from tests.integration.kafka_io import kafka_producer, topic_catalog
from tests.integration.worker_process import (
    WorkerProcess,
    eventually,
    make_worker_settings,
    own_topics,
    running_worker,
)


def new_order_id() -> str:
    return f"o-{uuid.uuid4()}"


async def produce(producer: AIOKafkaProducer, settings: Settings, event: OrderEvent) -> None:
    topic = topic_catalog(settings).orders_events.name
    await producer.send_and_wait(topic, encode(event), key=event.payload.id.encode())


async def row_where(
    store: OrderStore, order_id: str, condition: str, worker: WorkerProcess, **expected: object
) -> OrderView:
    """The order's row once it exists and has the `expected` field values."""

    async def probe() -> OrderView | None:
        view = await store.get(order_id)
        if view is None or any(getattr(view, k) != v for k, v in expected.items()):
            return None
        return view

    return await eventually(probe, what=f"row {order_id} {condition}", worker=worker)


@pytest.fixture(scope="module")
def worker_settings(
    stack_settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Settings]:
    settings = make_worker_settings(stack_settings, tmp_path_factory.mktemp("worker-data"))
    with own_topics(settings):
        yield settings


@pytest.fixture(scope="module")
def worker(
    worker_settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WorkerProcess]:
    with running_worker(
        worker_settings, tmp_path_factory.mktemp("worker") / "worker.log"
    ) as process:
        yield process


@pytest.fixture(scope="module")
async def producer(worker_settings: Settings) -> AsyncIterator[AIOKafkaProducer]:
    async with kafka_producer(worker_settings) as producer:
        yield producer


@pytest.fixture(scope="module")
async def store(worker_settings: Settings) -> AsyncIterator[OrderStore]:
    store = OrderStore.from_settings(worker_settings.database)
    yield store
    await store.close()
