"""`stop_consumer`: a consumer's stop never ends its caller with a cancellation that was not
the caller's (aiokafka 0.14's `Fetcher.close` cancels its pending tasks, then awaits each
without catching the `CancelledError`: a worker's template reader crashed the worker with it
when a read timed out during a broker restart, in a chaos run)."""

from __future__ import annotations

import asyncio

import pytest

from streams.kafka.consumer_stop import stop_consumer


class LeakingConsumer:
    """Stops as aiokafka's fetcher closes: its pending task cancelled, then awaited."""

    def __init__(self) -> None:
        self.pending: asyncio.Task[None] | None = None
        self.stopped = False

    async def start(self) -> None:
        self.pending = asyncio.create_task(asyncio.sleep(3600))  # a fetch retrying, say
        await asyncio.sleep(0)

    async def stop(self) -> None:
        assert self.pending is not None
        self.pending.cancel()
        await self.pending  # raises the pending task's CancelledError here
        self.stopped = True


async def test_the_consumers_own_cancelled_task_does_not_end_the_caller() -> None:
    consumer = LeakingConsumer()
    await consumer.start()
    with pytest.raises(asyncio.CancelledError):
        await consumer.stop()  # the leak, as aiokafka has it
    consumer = LeakingConsumer()
    await consumer.start()
    await stop_consumer(consumer)  # returns: the caller was not cancelled
    assert consumer.pending is not None
    assert consumer.pending.cancelled()


async def test_a_cancellation_of_the_caller_still_ends_it() -> None:
    stopping = asyncio.Event()

    class SlowConsumer:
        async def stop(self) -> None:
            stopping.set()
            await asyncio.sleep(3600)

    caller = asyncio.create_task(stop_consumer(SlowConsumer()))
    await stopping.wait()
    caller.cancel()
    with pytest.raises(asyncio.CancelledError):
        await caller
    assert caller.cancelled()
