"""Two `python -m agents` processes in one consumer group, RocksDB stores on their own disks.

One scenario, in order (starting two workers is the slow part): they share the partitions; a
lookup through either worker reaches the key's owner; one stops while orders keep coming, and
the other takes every partition over, serves the moved keys with the values recovered from the
changelog, and processes what came during and after the takeover. "Counts" are checked on the
state: the table holds exactly one entry per order in each partition (none lost, none
duplicated, values exact). The events processed by the `materialize_orders` agent (from the
workers' `/metrics`) must cover every event produced before the stop (summed over both) and
after it (the survivor's). Processing is at-least-once: a stopping worker commits what it
acknowledged, but when that last commit fails (a broker under load answers a rebalance
instead) its successor processes those events again, so counts may exceed what was produced;
the state must not change because of it, which the exact values above show.
"""

from __future__ import annotations

import asyncio
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from functools import partial
from typing import Any

import aiohttp
import pytest
from aiokafka import AIOKafkaProducer
from prometheus_client.parser import text_string_to_metric_families

from agents.orders.pipeline import AGENT_NAME, TABLE_NAME
from agents.orders.state import merge, to_entry
from agents.worker.table_sizes import key_partition
from schemas.orders import OrderEvent, OrderView
from streams.settings import Settings
from tests.integration.agents.conftest import new_order_id, produce
from tests.integration.kafka_io import records_to_end, topic_catalog
from tests.integration.worker_process import (
    OPERATOR_HEADERS,
    WorkerProcess,
    another_worker,
    eventually,
    make_worker_settings,
    own_topics,
)
from tests.unit.agents.factories import order_event

ORDERS = 60
DURING_ORDERS = 30
LATE_ORDERS = 20
# Orders sent while the first worker stops, spread over about this long.
DURING_SPREAD_S = 4.0
# A rebalance after a member joins or leaves takes a few heartbeats; recovery adds the changelog.
REBALANCE_DEADLINE_S = 120.0
# The table shows an order before its batch is acknowledged (and counted): a moment later.
COUNT_DEADLINE_S = 15.0


@pytest.fixture(scope="module")
def group_settings(
    stack_settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Settings]:
    base = make_worker_settings(stack_settings, tmp_path_factory.mktemp("unused"))
    rocksdb = base.worker.model_copy(update={"store": "rocksdb://"})
    with own_topics(base.model_copy(update={"worker": rocksdb})) as settings:
        yield settings


@pytest.fixture(scope="module")
def workers(
    group_settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[WorkerProcess, WorkerProcess]]:
    logs = tmp_path_factory.mktemp("two-workers")
    first, second = (
        WorkerProcess(another_worker(group_settings, logs / f"data-{name}"), logs / f"{name}.log")
        for name in ("a", "b")
    )
    try:
        first.wait_ready()
        second.wait_ready()
        yield first, second
    finally:
        codes = {worker.web_url: worker.stop() for worker in (first, second)}
    failed = {url: code for url, code in codes.items() if code != 0}
    if failed:
        pytest.fail(f"workers exited with {failed}:\n{first.log_tail()}\n{second.log_tail()}")


@pytest.fixture(scope="module")
async def producer(group_settings: Settings) -> AsyncIterator[AIOKafkaProducer]:
    producer = AIOKafkaProducer(bootstrap_servers=group_settings.kafka.bootstrap, acks="all")
    await producer.start()
    yield producer
    await producer.stop()


async def get_json(url: str) -> tuple[int, Any]:
    async with (
        aiohttp.ClientSession(headers=OPERATOR_HEADERS) as http,
        http.get(url) as response,
    ):
        return response.status, await response.json(content_type=None)


async def orders_table(worker: WorkerProcess) -> dict[str, Any]:
    status, body = await get_json(f"{worker.web_url}/v1/tables")
    assert status == 200, body
    return next(table for table in body["tables"] if table["name"] == TABLE_NAME)


def owners(table: dict[str, Any]) -> dict[int, str | None]:
    return {row["partition"]: row["worker"] for row in table["partitions"]}


async def processed_events(worker: WorkerProcess) -> int:
    async with aiohttp.ClientSession() as http, http.get(f"{worker.web_url}/metrics") as response:
        text = await response.text()
    for family in text_string_to_metric_families(text):
        if family.name == "tributary_worker_events":
            return int(
                sum(
                    sample.value
                    for sample in family.samples
                    if sample.name.endswith("_total") and sample.labels["agent"] == AGENT_NAME
                )
            )
    return 0


async def describe_worker(worker: WorkerProcess) -> str:
    """What a worker says about its consumer, for a failure: its metrics and its consumer's
    state (`GET /v1/consumer`)."""
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{worker.web_url}/metrics") as response:
            text = await response.text()
        async with http.get(f"{worker.web_url}/v1/consumer", headers=OPERATOR_HEADERS) as response:
            state = await response.json(content_type=None)
    wanted = (
        "tributary_worker_consumer_lag",
        "tributary_worker_events_total",
        "tributary_worker_events_skipped",
        "tributary_worker_records_",  # what the stall watchdog saw last
        "tributary_worker_stall_",
    )
    lines = [line for line in text.splitlines() if line.startswith(wanted)]
    consumer = "\n".join(state.get("state", [str(state)]))
    return "Its metrics:\n" + "\n".join(lines) + "\nIts consumer:\n" + consumer


async def missing_orders(
    worker: WorkerProcess, settings: Settings, expected: dict[str, dict[str, Any]]
) -> str:
    """Which expected orders the worker does not serve, where their events are, and whether
    the table's changelog has them (recorded and not recovered, or never recorded)."""
    changelog = f"{settings.worker.app_id}-{TABLE_NAME}-changelog"
    recorded = {record.key for record in await records_to_end(settings, changelog)}
    events = await records_to_end(settings, topic_catalog(settings).orders_events.name)
    placed = {record.key: (record.partition, record.offset) for record in events}
    lines = []
    for order_id, entry in expected.items():
        status, body = await get_json(f"{worker.web_url}/v1/tables/{TABLE_NAME}/{order_id}")
        if status != 200 or body.get("value") != entry:
            key = order_id.encode()
            partition, offset = placed.get(key, (None, None))
            lines.append(
                f"{order_id}: {status}, last event at partition {partition} offset {offset},"
                f" in the changelog: {key in recorded}"
            )
    return f"{len(lines)} orders missing or stale:\n" + "\n".join(lines)


async def table_when(
    asked: WorkerProcess,
    condition: str,
    ok: Any,
    deadline_s: float = REBALANCE_DEADLINE_S,
    missing: Callable[[], Awaitable[str]] | None = None,
) -> dict[str, Any]:
    async def probe() -> dict[str, Any] | None:
        table = await orders_table(asked)
        return table if ok(table) else None

    async def diagnose() -> str:
        try:
            found = await missing() if missing is not None else ""
        except Exception as exc:  # noqa: BLE001 - the failure's own message matters more
            found = f"(could not list the missing orders: {exc!r})"
        return found + "\n" + await describe_worker(asked)

    return await eventually(
        probe, what=condition, worker=asked, deadline_s=deadline_s, diagnose=diagnose
    )


async def produce_spread(
    producer: AIOKafkaProducer, settings: Settings, events: list[OrderEvent]
) -> None:
    for event in events:
        await produce(producer, settings, event)
        await asyncio.sleep(DURING_SPREAD_S / len(events))


def expected_entries(events: list[OrderEvent]) -> dict[str, dict[str, Any]]:
    views: dict[str, OrderView] = {}
    for event in events:
        order_id = event.payload.id
        views[order_id] = merge(views.get(order_id), event)
    return {order_id: to_entry(view) for order_id, view in views.items()}


async def assert_entries(asked: WorkerProcess, expected: dict[str, dict[str, Any]]) -> set[str]:
    """Every entry through `asked`, exact; returns the URLs of the workers that answered."""
    answered = set()
    for order_id, entry in expected.items():
        status, body = await get_json(f"{asked.web_url}/v1/tables/{TABLE_NAME}/{order_id}")
        assert status == 200, body
        assert body["value"] == entry, order_id
        answered.add(body["worker"])
    return answered


async def entries_once_recovered(
    asked: WorkerProcess, expected: dict[str, dict[str, Any]]
) -> set[str]:
    """Like `assert_entries`, once every entry is exact: a worker that took partitions over
    serves them while it replays their changelog, so a key shows up with its first value and
    reaches its latest when recovery does."""

    async def probe() -> set[str] | None:
        answered = set()
        for order_id, entry in expected.items():
            status, body = await get_json(f"{asked.web_url}/v1/tables/{TABLE_NAME}/{order_id}")
            if status != 200 or body["value"] != entry:
                return None
            answered.add(body["worker"])
        return answered

    what = "every entry recovered exactly"
    return await eventually(probe, what=what, worker=asked, deadline_s=REBALANCE_DEADLINE_S)


async def test_two_workers_share_route_and_take_over_without_losing_or_doubling(
    workers: tuple[WorkerProcess, WorkerProcess],
    group_settings: Settings,
    producer: AIOKafkaProducer,
) -> None:
    first, second = workers
    partitions = group_settings.kafka.partitions
    both = {first.web_url, second.web_url}

    def shared(table: dict[str, Any]) -> bool:
        return set(owners(table).values()) == both

    # Each owns some partitions, and both agree on who owns which.
    table = await table_when(first, "both workers owning partitions", shared)
    assert owners(await table_when(second, "the same view on the second", shared)) == owners(table)

    order_ids = [new_order_id() for _ in range(ORDERS)]
    events = [order_event(order_id, at_s=0) for order_id in order_ids]
    events += [order_event(order_id, at_s=10, status="paid") for order_id in order_ids]
    for event in events:
        await produce(producer, group_settings, event)
    expected = expected_entries(events)

    await table_when(first, f"{ORDERS} orders in the table", lambda t: t["keys"] == ORDERS)

    # Every event acknowledged (so applied to the table: an order's key appears with its first
    # event, its later ones may still be on their way).
    async def all_processed() -> int | None:
        total = await processed_events(first) + await processed_events(second)
        return total if total >= len(events) else None

    assert await eventually(all_processed, what="events counted", worker=first) == len(events)
    processed_by_first = await processed_events(first)
    assert 0 < processed_by_first < len(events)

    # Any worker answers for any key, from the key's owner.
    by_owner = owners(await orders_table(first))
    for asked in (first, second):
        assert await assert_entries(asked, expected) == both
    for order_id in order_ids[:10]:
        _, body = await get_json(f"{second.web_url}/v1/tables/{TABLE_NAME}/{order_id}")
        assert body["worker"] == by_owner[key_partition(order_id.encode(), partitions)]

    # Orders keep coming while the first worker stops: some reach it before it leaves, the
    # rest the second during its takeover (its recovery, the seek to committed offsets).
    during = [order_event(new_order_id(), at_s=15) for _ in range(DURING_ORDERS)]
    producing = asyncio.create_task(produce_spread(producer, group_settings, during))
    assert await asyncio.to_thread(first.stop) == 0
    await producing
    events += during
    expected = expected_entries(events)
    alone = {second.web_url}
    await table_when(
        second,
        "the second worker owning every partition with every order",
        lambda t: set(owners(t).values()) == alone and t["keys"] == ORDERS + DURING_ORDERS,
        missing=partial(missing_orders, second, group_settings, expected),
    )
    # The first worker's orders, served by the second from the recovered state.
    assert await entries_once_recovered(second, expected) == alone

    counted_before_late = await processed_events(second)
    late = [order_event(order_id, at_s=20, status="fulfilled") for order_id in order_ids]
    late += [order_event(new_order_id(), at_s=30) for _ in range(LATE_ORDERS)]
    for event in late:
        await produce(producer, group_settings, event)
    expected = expected_entries(events + late)

    # The state first: every order, late ones included, exact in its partition (none lost,
    # none doubled); a survivor that stops processing fails here, saying what its consumer does.
    async def every_entry_exact() -> set[str] | None:
        table = await orders_table(second)
        if table["keys"] != ORDERS + DURING_ORDERS + LATE_ORDERS:
            return None
        try:
            return await assert_entries(second, expected)
        except AssertionError:
            return None

    assert await eventually(
        every_entry_exact,
        what="every late order applied",
        worker=second,
        diagnose=partial(describe_worker, second),
    ) == {second.web_url}
    table = await orders_table(second)
    assert [row["keys"] for row in table["partitions"]] == [
        sum(1 for key in expected if key_partition(key.encode(), partitions) == partition)
        for partition in range(partitions)
    ]

    # Then the counts: every late event processed at least once (see the module docstring for
    # why re-processing is allowed), as the survivor's own metrics report it once acknowledged.
    # (Those sent while the first worker stopped are checked on the state only: how many it
    # processed before leaving, nobody can ask it any more.)
    async def counted() -> int | None:
        seen = await processed_events(second) - counted_before_late
        return seen if seen >= len(late) else None

    await eventually(
        counted,
        what="every event counted",
        worker=second,
        deadline_s=COUNT_DEADLINE_S,
        diagnose=partial(describe_worker, second),
    )
    if "worker stalled" in second.log_path.read_text(errors="replace"):  # its watchdog rescued it
        warnings.warn("the surviving worker stalled and its watchdog restarted it", stacklevel=1)
