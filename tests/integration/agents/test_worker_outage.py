"""PostgreSQL going away under a running worker: the batch waits and is written once it is back.

The worker reaches PostgreSQL through a proxy this test switches on and off, so the outage is
real (connections refused) but only this worker sees it; the shared database stays up.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiokafka import AIOKafkaProducer
from pydantic import SecretStr
from sqlalchemy.engine import make_url

from agents.orders.pipeline import AGENT_NAME
from streams.runtime import free_port
from streams.settings import Settings
from streams.stores.order_store import OrderStore
from tests.integration.agents.conftest import (
    WorkerProcess,
    eventually,
    make_worker_settings,
    new_order_id,
    own_topics,
    produce,
    row_where,
)
from tests.integration.agents.tcp_proxy import TcpProxy
from tests.unit.agents.factories import order_event


def database_proxy_for(settings: Settings) -> TcpProxy:
    """Not started: until the test starts it, connections through it are refused."""
    real = make_url(settings.database.url.get_secret_value())
    return TcpProxy(free_port("127.0.0.1"), real.host or "127.0.0.1", real.port or 5432)


def behind(settings: Settings, proxy: TcpProxy) -> Settings:
    """`settings` with the database reached through `proxy`."""
    real = make_url(settings.database.url.get_secret_value())
    proxied = real.set(host="127.0.0.1", port=proxy.listen_port)
    database = settings.database.model_copy(
        update={"url": SecretStr(proxied.render_as_string(hide_password=False))}
    )
    return settings.model_copy(update={"database": database})


@pytest.fixture(scope="module")
def database_proxy(stack_settings: Settings) -> TcpProxy:
    return database_proxy_for(stack_settings)


@pytest.fixture(scope="module")
def worker_settings(
    stack_settings: Settings, tmp_path_factory: pytest.TempPathFactory, database_proxy: TcpProxy
) -> Iterator[Settings]:
    base = make_worker_settings(stack_settings, tmp_path_factory.mktemp("worker-data"))
    with own_topics(behind(base, database_proxy)) as settings:
        yield settings


@pytest.fixture(scope="module")
async def store(stack_settings: Settings) -> AsyncIterator[OrderStore]:
    """The test's own view of the database, around the proxy."""
    store = OrderStore.from_settings(stack_settings.database)
    yield store
    await store.close()


async def agent_stats(worker: WorkerProcess) -> dict[str, Any]:
    url = f"{worker.web_url}/agents/{AGENT_NAME}/stats/"
    async with aiohttp.ClientSession() as http, http.get(url) as response:
        stats: dict[str, Any] = await response.json()
        return stats


async def retried_at_least(times: int, worker: WorkerProcess) -> dict[str, Any]:
    async def probe() -> dict[str, Any] | None:
        stats = await agent_stats(worker)
        return stats if stats["retries"] >= times else None

    return await eventually(probe, what=f"the worker retrying {times} times", worker=worker)


async def test_a_batch_is_retried_through_an_outage_and_written_when_postgresql_is_back(
    worker: WorkerProcess,
    worker_settings: Settings,
    producer: AIOKafkaProducer,
    store: OrderStore,
    database_proxy: TcpProxy,
) -> None:
    order_id = new_order_id()
    event = order_event(order_id, at_s=1)
    await produce(producer, worker_settings, event)

    during = await retried_at_least(3, worker)
    assert during["rows_written"] == 0
    assert await store.get(order_id) is None
    assert "writing 1 order views failed (postgresql unavailable" in worker.log_tail(20_000)

    await database_proxy.start()
    try:
        await row_where(store, order_id, "exists", worker, last_event_id=event.event_id)
    finally:
        await database_proxy.stop()
    after = await agent_stats(worker)
    assert (after["rows_written"], after["events"]) == (1, 1)


async def test_a_worker_stopped_during_an_outage_stops_promptly_and_loses_nothing(
    stack_settings: Settings, tmp_path: Path, producer: AIOKafkaProducer, store: OrderStore
) -> None:
    proxy = database_proxy_for(stack_settings)
    with own_topics(behind(make_worker_settings(stack_settings, tmp_path), proxy)) as settings:
        event = order_event(new_order_id(), at_s=1)
        first = WorkerProcess(settings, tmp_path / "first.log")
        try:
            await asyncio.to_thread(first.wait_ready)
            await produce(producer, settings, event)
            await retried_at_least(1, first)
        finally:
            # Killed (and failing below) if it does not stop within the deadline.
            returncode = await asyncio.to_thread(first.stop)
        assert returncode == 0, first.log_tail()

        await proxy.start()
        second = WorkerProcess(settings, tmp_path / "second.log")
        try:
            await asyncio.to_thread(second.wait_ready)
            # The first worker never acknowledged the batch, so the second one gets it again.
            await row_where(store, event.payload.id, "exists", second, last_event_id=event.event_id)
        finally:
            await asyncio.to_thread(second.stop)
            await proxy.stop()
