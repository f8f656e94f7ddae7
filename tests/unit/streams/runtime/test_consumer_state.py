"""The description of a stalled worker's consumer: it must never fail the worker it describes."""

from __future__ import annotations

import asyncio

from faust.types import TP

from streams.runtime.app import create_faust_app
from streams.runtime.consumer_state import describe_consumer
from streams.settings import WorkerProcessSettings


async def test_whatever_faust_state_is_missing_the_description_is_written() -> None:
    app = create_faust_app(WorkerProcessSettings.model_validate({"worker": {"store": "memory://"}}))
    tp = TP("orders.events", 0)
    text = describe_consumer(app, [tp], {tp: 42}, batches_in_flight=3)
    assert "batches in flight=3" in text
    assert "orders.events[0] end=42" in text
    assert "task " in text  # where each task of the running loop waits (this test's, here)


async def test_a_task_waiting_deep_in_a_chain_shows_where_it_started_and_where_it_waits() -> None:
    app = create_faust_app(WorkerProcessSettings.model_validate({"worker": {"store": "memory://"}}))
    never = asyncio.Event()

    async def innermost() -> None:
        await never.wait()

    async def nested(depth: int) -> None:
        if depth:
            await nested(depth - 1)
        else:
            await innermost()

    async def outermost_of_the_task() -> None:
        await the_tasks_own()

    async def the_tasks_own() -> None:
        await nested(12)

    task = asyncio.ensure_future(outermost_of_the_task())
    await asyncio.sleep(0)
    try:
        text = describe_consumer(app, [], {}, batches_in_flight=0)
    finally:
        task.cancel()
    (line,) = [line for line in text.splitlines() if "outermost_of_the_task@" in line]
    frames = line.split(": ", 1)[1].split(" > ")
    assert [frame.split("@")[0] for frame in frames[:3]] == [
        "outermost_of_the_task",
        "the_tasks_own",
        "…",
    ]
    assert len(frames) == 8
    assert [frame.split("@")[0] for frame in frames[-2:]] == ["innermost", "wait"]
