"""The app's drain loop delivers each record in its own task, and keeps Faust's loop's rules.

Each test runs the consumer's drain loop (`Consumer._drain_messages`, as the Fetcher service
does) over a scripted consumer thread and a scripted conductor callback.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import faust
import pytest
from aiokafka.structs import ConsumerRecord
from faust.types import TP

from streams.runtime.app import create_faust_app
from streams.settings import WorkerProcessSettings
from tests.unit.streams.runtime.scripted_thread import ScriptedThread

ORDERS = TP("orders.events", 0)


def record(offset: int) -> ConsumerRecord[bytes, bytes]:
    return ConsumerRecord(ORDERS.topic, 0, offset, 0, 0, None, b"order", None, 0, 5, ())


def the_apps() -> faust.App:
    return create_faust_app(
        WorkerProcessSettings.model_validate({"worker": {"store": "memory://"}})
    )


def plain_faust() -> faust.App:
    return faust.App("plain-faust", broker="kafka://localhost:9092", store="memory://")


# What Faust's loop does besides, the app's keeps: each such test runs both.
BOTH_LOOPS = pytest.mark.parametrize("new_app", [plain_faust, the_apps], ids=["faust", "app"])


class CountingThread(ScriptedThread):
    """A scripted consumer thread that counts the end-offset lookups."""

    highwater_asked = 0

    def highwater(self, tp: TP) -> int:
        self.highwater_asked += 1
        return super().highwater(tp)


async def drain(
    app: faust.App,
    batches: Sequence[Mapping[TP, list[Any]]],
    callback: Callable[[Any], Awaitable[None]],
) -> CountingThread:
    consumer: Any = app.consumer
    app.topics.acking_topics.add(ORDERS.topic)  # as an agent subscribing to it does
    consumer._active_partitions = {ORDERS}
    thread = consumer._thread = CountingThread(batches, {ORDERS}, end=100)
    consumer.callback = callback

    class Fetcher:
        _stopped = thread.stopped

    await consumer._drain_messages(Fetcher())
    return thread


TWO_BATCHES = [{ORDERS: [record(0), record(1), record(2)]}, {ORDERS: [record(3), record(4)]}]


async def tasks_delivering(app: faust.App) -> tuple[list[int], set[asyncio.Task[Any] | None]]:
    delivered: list[int] = []
    tasks: set[asyncio.Task[Any] | None] = set()

    async def on_message(message: Any) -> None:
        delivered.append(message.offset)
        tasks.add(asyncio.current_task())

    await drain(app, TWO_BATCHES, on_message)
    return delivered, tasks


async def test_fausts_loop_delivers_each_record_in_a_task_of_its_own() -> None:
    delivered, tasks = await tasks_delivering(plain_faust())
    assert delivered == [0, 1, 2, 3, 4]
    assert len(tasks) == 5


async def test_the_apps_loop_delivers_every_record_in_order_in_the_drain_task() -> None:
    delivered, tasks = await tasks_delivering(the_apps())
    assert delivered == [0, 1, 2, 3, 4]
    assert len(tasks) == 1


@BOTH_LOOPS
async def test_a_delivery_that_waits_is_finished_before_the_next_record(
    new_app: Callable[[], faust.App],
) -> None:
    app = new_app()
    steps: list[str] = []
    room, full = asyncio.Event(), asyncio.Event()

    async def make_room() -> None:
        await full.wait()
        steps.append("room")
        room.set()

    async def on_message(message: Any) -> None:
        steps.append(f"put {message.offset}")
        if message.offset == 1:
            full.set()
            await room.wait()  # a full channel queue
            steps.append("put 1 done")

    helper = asyncio.ensure_future(make_room())
    await drain(app, [{ORDERS: [record(0), record(1), record(2)]}], on_message)
    await helper
    assert steps == ["put 0", "put 1", "room", "put 1 done", "put 2"]


@BOTH_LOOPS
async def test_a_suspended_flow_abandons_a_waiting_delivery_and_the_loop_goes_on(
    new_app: Callable[[], faust.App],
) -> None:
    app = new_app()
    consumer: Any = app.consumer
    steps: list[str] = []
    never = asyncio.Event()

    async def on_message(message: Any) -> None:
        steps.append(f"put {message.offset}")
        if message.offset == 1:
            consumer.suspend_flow.set()  # a rebalance starts while the queue is full
            try:
                await never.wait()
            except asyncio.CancelledError:
                steps.append("put 1 abandoned")
                raise
            steps.append("put 1 done")

    await drain(app, [{ORDERS: [record(0), record(1), record(2)]}], on_message)
    await asyncio.sleep(0)  # the app's loop goes on before the cancellation has run
    assert steps[:2] == ["put 0", "put 1"]
    assert sorted(steps[2:]) == ["put 1 abandoned", "put 2"]


@BOTH_LOOPS
@pytest.mark.parametrize("waits_first", [False, True])
async def test_a_failing_delivery_fails_the_loop(
    new_app: Callable[[], faust.App], waits_first: bool
) -> None:
    app = new_app()

    async def on_message(message: Any) -> None:
        if waits_first:
            await asyncio.sleep(0)
        raise ValueError(f"undeliverable {message.offset}")

    with pytest.raises(ValueError, match="undeliverable 0"):
        await drain(app, TWO_BATCHES, on_message)


@BOTH_LOOPS
async def test_the_loop_commits_every_commit_every_acknowledgements(
    new_app: Callable[[], faust.App],
) -> None:
    app = new_app()
    consumer: Any = app.consumer
    consumer._commit_every = 2
    commits: list[int] = []

    async def commit(*args: Any, **kwargs: Any) -> bool:
        commits.append(consumer.delivered)
        return True

    consumer.commit = commit
    consumer.delivered = 0

    async def on_message(message: Any) -> None:
        consumer.delivered += 1
        consumer._n_acked += 1

    await drain(app, TWO_BATCHES, on_message)
    assert commits == [2, 4]


async def offsets_delivering(
    app: faust.App, batches: Sequence[Mapping[TP, list[Any]]]
) -> list[int]:
    delivered: list[int] = []

    async def on_message(message: Any) -> None:
        delivered.append(message.offset)

    await drain(app, batches, on_message)
    return delivered


@BOTH_LOOPS
async def test_the_partitions_end_offset_is_reported_for_the_lag(
    new_app: Callable[[], faust.App],
) -> None:
    app = new_app()
    assert await offsets_delivering(app, TWO_BATCHES) == [0, 1, 2, 3, 4]
    assert app.monitor.tp_end_offsets[ORDERS] == 100


async def test_the_apps_loop_asks_a_partitions_end_offset_once_per_fetch() -> None:
    app = the_apps()

    async def on_message(message: Any) -> None:
        return None

    thread = await drain(app, TWO_BATCHES, on_message)
    assert thread.highwater_asked == 2  # Faust's: once per record, 5


@BOTH_LOOPS
async def test_a_new_consumer_generation_ends_the_fetch_being_delivered(
    new_app: Callable[[], faust.App],
) -> None:
    app = new_app()
    delivered: list[int] = []

    async def on_message(message: Any) -> None:
        delivered.append(message.offset)
        if message.offset == 1:
            app.consumer_generation_id += 1  # a rebalance: the rest of this fetch is stale

    await drain(app, TWO_BATCHES, on_message)
    assert delivered == [0, 1, 3, 4]


@BOTH_LOOPS
async def test_records_of_a_partition_no_longer_active_are_not_delivered(
    new_app: Callable[[], faust.App],
) -> None:
    revoked = TP("orders.events", 1)
    gone = ConsumerRecord(revoked.topic, 1, 7, 0, 0, None, b"order", None, 0, 5, ())
    batches = [{ORDERS: [record(0)], revoked: [gone]}, {ORDERS: [record(1)]}]
    assert await offsets_delivering(new_app(), batches) == [0, 1]


@BOTH_LOOPS
async def test_a_fetch_while_the_flow_is_off_seeks_back_and_delivers_nothing(
    new_app: Callable[[], faust.App],
) -> None:
    app = new_app()
    consumer: Any = app.consumer
    seeks: list[str] = []
    real_wait = consumer._wait_next_records

    async def wait_then_suspend(timeout: float) -> Any:  # noqa: ASYNC109 - Faust's signature
        fetched = await real_wait(timeout)
        if not seeks:
            consumer.flow_active = False  # a rebalance began while the fetch was in flight
        return fetched

    async def perform_seek() -> None:
        seeks.append("seek")
        consumer.flow_active = True

    consumer._wait_next_records = wait_then_suspend
    consumer.perform_seek = perform_seek
    assert await offsets_delivering(app, TWO_BATCHES) == [3, 4]
    assert seeks == ["seek"]
