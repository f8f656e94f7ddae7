"""`tributary tables` against a real worker process."""

from __future__ import annotations

from aiokafka import AIOKafkaProducer
from pydantic import SecretStr

from agents.orders.state import merge, to_entry
from streams.runtime import free_port
from streams.settings import Settings
from streams.stores.order_store import OrderStore
from tests.integration.agents.conftest import new_order_id, produce, row_where
from tests.integration.cli.support import cli
from tests.integration.worker_process import WorkerProcess
from tests.unit.agents.factories import order_event


async def test_tables_lists_and_gets_from_the_worker(
    worker: WorkerProcess, worker_settings: Settings, producer: AIOKafkaProducer
) -> None:
    order_id = new_order_id()
    event = order_event(order_id, at_s=3, status="paid")
    await produce(producer, worker_settings, event)
    store = OrderStore.from_settings(worker_settings.database)
    try:
        await row_where(store, order_id, "exists", worker, last_event_id=event.event_id)
    finally:
        await store.close()

    # The worker URL comes from the settings (TRIBUTARY_WORKER_WEB_HOST/PORT).
    listed = await cli(worker_settings, "tables")
    assert listed.code == 0, listed.stderr
    orders = next(line for line in listed.lines if line["name"] == "orders")
    assert {row["worker"] for row in orders["partitions"]} == {worker.web_url}
    assert orders["keys"] >= 1

    got = await cli(worker_settings, "tables", "get", "orders", order_id)
    assert got.code == 0, got.stderr
    assert got.lines == [
        {
            "table": "orders",
            "key": order_id,
            "worker": worker.web_url,
            "value": to_entry(merge(None, event)),
        }
    ]


async def test_a_missing_key_exits_2_naming_it(
    worker: WorkerProcess, worker_settings: Settings
) -> None:
    missing = new_order_id()
    result = await cli(
        worker_settings, "tables", "--worker-url", worker.web_url, "get", "orders", missing
    )
    assert (result.code, result.lines) == (2, [])
    assert missing in result.stderr


async def test_a_wrong_token_exits_2_and_an_absent_worker_exits_1(
    worker: WorkerProcess, worker_settings: Settings
) -> None:
    wrong = worker_settings.operator.model_copy(update={"token": SecretStr("wrong")})
    refused = await cli(worker_settings.model_copy(update={"operator": wrong}), "tables")
    assert refused.code == 2
    assert "401" in refused.stderr

    nobody = f"http://127.0.0.1:{free_port('127.0.0.1')}"
    absent = await cli(worker_settings, "tables", "--worker-url", nobody)
    assert absent.code == 1
    assert "worker is unavailable" in absent.stderr
