"""Stopping an aiokafka consumer without a cancellation that is not the caller's.

aiokafka 0.14's `AIOKafkaConsumer.stop` closes its fetcher, which cancels the fetcher's pending
tasks and then awaits each of them without catching their `CancelledError`: stopped while a
fetch was retrying (a broker restarting), `stop` raises a `CancelledError` into a caller nobody
cancelled. A worker's template reader, closing its consumer after a read timed out during a
broker restart, passed it on to the routing agent, and Faust took it for a crash and stopped the
worker (a chaos run). Here that cancellation ends with the stop; one of the caller's own (a
worker stopping) still ends the caller.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol

log = logging.getLogger(__name__)


class Stoppable(Protocol):
    async def stop(self) -> None: ...


async def stop_consumer(consumer: Stoppable) -> None:
    try:
        await consumer.stop()
    except asyncio.CancelledError:
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            raise
        log.debug("consumer stopped; a cancelled task of its own was swallowed")
