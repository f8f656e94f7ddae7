"""One real worker process per test module, on the module's own topics and consumer group.

A module that needs other settings overrides `worker_settings` only: `worker`, `producer` and
`store` follow it.

A module that sends through the provider sandbox builds its settings with
`sandboxed_worker_settings` (its own dispatch settings beside), and overrides `worker` with one
that asks for `sandbox` first, so the worker starts once the sandbox answers. `sandbox` runs on
`sandbox_settings`, the worker's, unless the module overrides that too (to post receipts to its
API, say). `api_url` serves the API on the worker's settings; `status_tap` reads
`notifications.status`.

Starting a worker (joining the group, creating the changelog topic, recovering the table) is the
slow part, so a module shares one; its tests stay independent by using their own order ids.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer

from schemas.orders import OrderEvent, OrderView
from streams.kafka.wire import encode
from streams.runtime import free_port
from streams.settings import DispatchSettings, Settings
from streams.stores.order_store import OrderStore
from tests.integration.agents.dispatch_support import TopicTap, tapped
from tests.integration.api.live_api import serving
from tests.integration.kafka_io import kafka_producer, topic_catalog
from tests.integration.sandbox_process import (
    SandboxProcess,
    make_sandbox_settings,
    running_sandbox,
)
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


def sandboxed_worker_settings(
    stack_settings: Settings, data_dir: Path, **dispatch: Any
) -> Settings:
    """`make_worker_settings` with a provider sandbox on free ports (`make_sandbox_settings`,
    its receipts posted where nothing listens: `sandbox_settings` says otherwise), every
    provider, HTTP and SMTP, pointed at it, and `dispatch` over the dispatch section's fields
    (validated, so a misspelt field fails)."""
    base = make_worker_settings(stack_settings, data_dir)
    base = make_sandbox_settings(base, f"http://127.0.0.1:{free_port('127.0.0.1')}")
    sandbox = base.sandbox
    sandbox_url = f"http://{sandbox.host}:{sandbox.http_port}"
    providers = base.providers.model_copy(
        update={
            "sendgrid_base_url": sandbox_url,
            "twilio_base_url": sandbox_url,
            "fcm_base_url": sandbox_url,
            "meta_base_url": sandbox_url,
            "smtp_host": sandbox.host,
            "smtp_port": sandbox.smtp_port,
        }
    )
    sending = DispatchSettings.model_validate({**base.dispatch.model_dump(), **dispatch})
    return base.model_copy(update={"providers": providers, "dispatch": sending})


@pytest.fixture(scope="module")
def sandbox_settings(worker_settings: Settings) -> Settings:
    """The sandbox's: the worker's, receipts posted nowhere (a module overrides it)."""
    return worker_settings


@pytest.fixture(scope="module")
def sandbox(
    sandbox_settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SandboxProcess]:
    log_path = tmp_path_factory.mktemp("sandbox") / "sandbox.log"
    with running_sandbox(sandbox_settings, log_path) as process:
        yield process


@pytest.fixture(scope="module")
def api_url(worker_settings: Settings) -> Iterator[str]:
    with serving(worker_settings) as url:
        yield url


@pytest.fixture(scope="module")
async def status_tap(worker_settings: Settings) -> AsyncIterator[TopicTap]:
    topic = topic_catalog(worker_settings).for_topic("notifications.status").name
    async with tapped(worker_settings, topic) as tap:
        yield tap
