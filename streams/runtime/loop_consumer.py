"""Faust's aiokafka consumer on the worker's own event loop instead of a thread of its own.

faust-streaming 0.15 runs aiokafka's consumer in a `ServiceThread`: a second event loop in a
second thread, reached through a method queue. Every fetch the drain loop asks for (several a
second per partition group under load), every commit, position and seek is queued to that
thread and its answer handed back across threads (`call_soon_threadsafe` on both sides, a
future and a wake-up of the other loop's selector each way), and the two threads take turns at
the GIL. None of it buys parallelism: aiokafka's fetcher, coordinator and heartbeat are Python
on an event loop, which the worker's own loop runs as well.

`LoopConsumer` is Faust's aiokafka `Consumer` with that thread replaced by `LoopConsumerClient`:
the same aiokafka consumer, rebalance listener and methods (`AIOKafkaConsumerThread`'s), run as
an ordinary service on the worker's loop. Calls that Faust queued to the thread are awaited
directly; the rebalance callbacks, which Faust sent back to the main thread through a second
queue, run in aiokafka's coordinator task as they are, so the order of a rebalance's steps is
unchanged: aiokafka still awaits the revocation before it rejoins and the assignment before it
fetches.
"""

from __future__ import annotations

from collections.abc import Callable, Set
from typing import Any

from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread
from faust.transport.drivers.aiokafka import Consumer as AIOKafkaConsumer
from faust.types import TP
from mode import Service
from mode.utils.futures import maybe_async


class LoopConsumerClient(AIOKafkaConsumerThread):
    """`AIOKafkaConsumerThread` started, called and stopped as a service on the caller's loop."""

    # Stopping waits for nothing the thread would have set: `on_stop` stops the client itself.
    wait_for_shutdown = False

    def __init__(self, consumer: Any, **kwargs: Any) -> None:
        # The "thread's" loop is the worker's: aiokafka's consumer is created on it (`on_start`).
        super().__init__(consumer, thread_loop=kwargs["loop"], **kwargs)

    async def start(self) -> None:
        await Service.start(self)

    async def maybe_start(self) -> bool:
        return await Service.maybe_start(self)

    async def crash(self, exc: BaseException) -> None:
        await Service.crash(self, exc)

    async def on_stop(self) -> None:
        await self.on_thread_stop()  # stops aiokafka's consumer

    async def _stop_children(self) -> None:
        await Service._stop_children(self)

    async def _stop_futures(self) -> None:
        await Service._stop_futures(self)

    async def _stop_exit_stacks(self) -> None:
        await Service._stop_exit_stacks(self)

    async def call_thread(self, fun: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        # As the thread's method queue: `fun` may be a plain function (`subscribe`).
        return await maybe_async(fun(*args, **kwargs))

    async def cast_thread(self, fun: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        await maybe_async(fun(*args, **kwargs))

    async def on_partitions_revoked(self, revoked: Set[TP]) -> None:
        await self.consumer.on_partitions_revoked(set(revoked))

    async def on_partitions_assigned(self, assigned: Set[TP], generation_id: int = 0) -> None:
        await self.consumer.on_partitions_assigned(set(assigned), generation_id)


class LoopConsumer(AIOKafkaConsumer):
    """Faust's aiokafka consumer whose aiokafka client runs on the worker's loop."""

    def _new_consumer_thread(self) -> AIOKafkaConsumerThread:
        return LoopConsumerClient(self, loop=self.loop, beacon=self.beacon)
