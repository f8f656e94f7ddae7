"""Reading a compacted topic to its end, again and again: a table every process holds whole.

For state every instance needs in full, whatever partitions it owns (the notification templates),
each process reads the whole topic from the start once, then on each `read_to_end` only what was
added since, up to the end offsets of that moment. So a caller that reads to the end after a
write was acknowledged sees that write: a read-your-writes view without a consumer group, a
changelog of our own, or a second copy in another store.

Partitions are assigned by hand (no group: no rebalance, no committed offsets; every process
reads everything) and learned from the admin API, because asking the consumer would auto-create
a missing topic with the broker's defaults (not compacted). Driver errors become
`ServiceUnavailableError("kafka")`.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from streams.errors import ServiceUnavailableError
from streams.kafka.client_security import aiokafka_security
from streams.kafka.consumer_stop import stop_consumer
from streams.kafka.topic_admin import topic_partitions_blocking
from streams.settings import KafkaSettings

SERVICE = "kafka"
POLL_MS = 100


@dataclass(frozen=True, slots=True)
class TableRecord:
    key: bytes | None
    value: bytes | None
    partition: int
    offset: int


class CompactedTopicReader:
    """One topic, every partition, from the start; `read_to_end` returns what is new."""

    def __init__(self, kafka: KafkaSettings, topic: str, client_suffix: str) -> None:
        self.topic = topic
        self._kafka = kafka
        self._client_id = f"{kafka.client_id}-{client_suffix}"
        self._consumer: Any = None
        self._tps: list[TopicPartition] = []
        self._lock = asyncio.Lock()
        self.records_read = 0

    async def _start(self) -> None:
        counts = await asyncio.to_thread(topic_partitions_blocking, self._kafka, [self.topic])
        partitions = counts.get(self.topic)
        if not partitions:
            raise ServiceUnavailableError(SERVICE, f"topic {self.topic} does not exist (yet)")
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self._kafka.bootstrap,
            client_id=self._client_id,
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            **aiokafka_security(self._kafka),
        )
        try:
            async with asyncio.timeout(self._kafka.request_timeout_s):
                await consumer.start()
        except (KafkaError, OSError, TimeoutError) as exc:
            await stop_consumer(consumer)
            raise ServiceUnavailableError(SERVICE, f"cannot read {self.topic}: {exc!r}") from exc
        self._tps = [TopicPartition(self.topic, p) for p in range(partitions)]
        consumer.assign(self._tps)
        await consumer.seek_to_beginning(*self._tps)
        self._consumer = consumer

    async def read_to_end(self) -> list[TableRecord]:
        """The records added since the last call (all of them the first time), up to the end
        offsets as of now. Concurrent callers are served one after the other.

        A read that fails may have moved past records it never returned: the reader then starts
        again from the beginning on the next call (folding a compacted topic again from the
        start gives the same state)."""
        async with self._lock:
            if self._consumer is None:
                await self._start()
            try:
                async with asyncio.timeout(self._kafka.request_timeout_s):
                    return await self._read(await self._consumer.end_offsets(self._tps))
            except (KafkaError, TimeoutError) as exc:
                await self.close()
                raise ServiceUnavailableError(SERVICE, f"reading {self.topic}: {exc!r}") from exc
            except BaseException:
                await self.close()
                raise

    async def _read(self, ends: dict[TopicPartition, int]) -> list[TableRecord]:
        records: list[TableRecord] = []
        while True:
            behind = [tp for tp in self._tps if await self._consumer.position(tp) < ends[tp]]
            if not behind:
                self.records_read += len(records)
                return records
            batches = await self._consumer.getmany(*behind, timeout_ms=POLL_MS)
            # Records past the ends (written meanwhile) are kept too: the position is past them.
            for tp, batch in batches.items():
                records.extend(TableRecord(r.key, r.value, tp.partition, r.offset) for r in batch)

    async def close(self) -> None:
        if self._consumer is not None:
            consumer, self._consumer = self._consumer, None
            await stop_consumer(consumer)
