"""A topic every worker reads in full, outside the consumer group: for commands each worker must
apply to state of its own (an operator's breaker reset), where the group would hand each record
to one worker only.

It starts at the end of the topic: a command is for the workers running when it was given (a
worker that starts later builds its state afresh), so nothing is replayed and no offset is
committed. One small aiokafka consumer per worker, with the Kafka security settings of the rest.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence

from aiokafka import AIOKafkaConsumer
from aiokafka.errors import KafkaError
from mode import Service

from streams.kafka.client_security import aiokafka_security
from streams.kafka.consumer_stop import stop_consumer
from streams.settings import KafkaSettings

log = logging.getLogger(__name__)

POLL_MS = 500
# After a failed poll (a broker away): aiokafka reconnects by itself, this only paces the log.
RETRY_S = 1.0

Handler = Callable[[Sequence[bytes | None]], object]


class BroadcastConsumer(Service):
    def __init__(self, kafka: KafkaSettings, topic: str, handle: Handler, client_id: str) -> None:
        super().__init__()
        self._kafka = kafka
        self._topic = topic
        self._handle = handle
        self._client_id = client_id
        self._consumer: AIOKafkaConsumer | None = None
        self._reading: asyncio.Task[None] | None = None

    async def on_start(self) -> None:
        consumer = AIOKafkaConsumer(
            self._topic,
            bootstrap_servers=self._kafka.bootstrap,
            client_id=self._client_id,
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="latest",
            **aiokafka_security(self._kafka),
        )
        await consumer.start()
        self._consumer = consumer
        self._reading = asyncio.create_task(self._read(consumer), name=f"broadcast {self._topic}")

    async def on_stop(self) -> None:
        """The reading task first: mode stops a service's own tasks only after `on_stop`, and a
        poll under way when the consumer stops would fail (`ConsumerStoppedError`)."""
        if self._reading is not None:
            self._reading.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reading
        if self._consumer is not None:
            await stop_consumer(self._consumer)

    async def _read(self, consumer: AIOKafkaConsumer) -> None:
        while not self.should_stop:
            try:
                batches = await consumer.getmany(timeout_ms=POLL_MS)
            except KafkaError as exc:
                log.warning("reading %s failed, retrying: %s", self._topic, exc)
                await self.sleep(RETRY_S)
                continue
            values = [record.value for records in batches.values() for record in records]
            if not values:
                continue
            try:
                self._handle(values)
            except Exception as exc:
                # A bug: crash the worker (its liveness fails, its supervisor restarts it) rather
                # than go on without reading commands.
                log.exception("handling %d records of %s failed", len(values), self._topic)
                await self.crash(exc)
                return
