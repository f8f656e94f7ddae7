"""Faust's consumer with its aiokafka client on the worker's loop: what Faust sent to the consumer
thread and back runs in the caller's task (starting and stopping the client against a real
broker is in the integration tests: every worker there runs on it)."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from faust.types import TP

from streams.runtime.app import TributaryApp
from streams.runtime.loop_consumer import LoopConsumer, LoopConsumerClient

# Only a guard against a hang (a call queued to a thread that is not there): never reached.
GUARD_S = 10

ORDERS = TP("p-orders.events", 0)


class RebalanceCalls:
    def __init__(self) -> None:
        self.calls: list[tuple[str, set[TP], asyncio.Task[Any] | None]] = []

    async def revoked(self, revoked: set[TP]) -> None:
        self.calls.append(("revoked", set(revoked), asyncio.current_task()))

    async def assigned(self, assigned: set[TP], generation_id: int = 0) -> None:
        self.calls.append(("assigned", set(assigned), asyncio.current_task()))


def loop_consumer(app: TributaryApp, calls: RebalanceCalls) -> LoopConsumer:
    return LoopConsumer(
        app.transport,
        callback=app.topics.on_message,
        on_partitions_revoked=calls.revoked,
        on_partitions_assigned=calls.assigned,
        beacon=app.beacon,
        loop=asyncio.get_running_loop(),
    )


async def test_the_worker_consumes_through_the_loop_consumer(app: TributaryApp) -> None:
    consumer = app.consumer
    assert isinstance(consumer, LoopConsumer)
    assert isinstance(consumer._thread, LoopConsumerClient)


async def test_the_aiokafka_client_is_created_on_the_workers_own_loop(app: TributaryApp) -> None:
    client = loop_consumer(app, RebalanceCalls())._thread
    assert client.thread_loop is asyncio.get_running_loop()


async def test_a_call_faust_queued_to_the_thread_runs_in_the_callers_thread(
    app: TributaryApp,
) -> None:
    client = loop_consumer(app, RebalanceCalls())._thread
    threads: list[int] = []

    async def fetch(max_records: int) -> dict[TP, list[int]]:
        threads.append(threading.get_ident())
        return {ORDERS: [max_records]}

    def subscribe(topics: set[str]) -> int:  # aiokafka's `subscribe` is a plain function
        threads.append(threading.get_ident())
        return len(topics)

    async with asyncio.timeout(GUARD_S):
        assert await client.call_thread(fetch, max_records=3) == {ORDERS: [3]}
        assert await client.call_thread(subscribe, topics={"a", "b"}) == 2
        await client.cast_thread(subscribe, topics={"a"})
    assert threads == [threading.get_ident()] * 3


async def test_rebalance_callbacks_run_in_the_coordinators_task_in_order(
    app: TributaryApp,
) -> None:
    """aiokafka awaits the revocation before it rejoins and the assignment before it fetches;
    run in its task, the app's callbacks keep that order with no queue between."""
    calls = RebalanceCalls()
    consumer = loop_consumer(app, calls)
    client = consumer._thread
    here = asyncio.current_task()

    async with asyncio.timeout(GUARD_S):
        await client.on_partitions_revoked({ORDERS})
        await client.on_partitions_assigned({ORDERS}, generation_id=7)

    assert calls.calls == [("revoked", {ORDERS}, here), ("assigned", {ORDERS}, here)]
    assert consumer._active_partitions == {ORDERS}  # Faust's own bookkeeping ran too
