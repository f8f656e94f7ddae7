"""A batch of records sent as one Kafka record batch per partition, on the app's one producer.

Faust's `Topic.send` costs about 75 µs of worker CPU per record (measured alone by
`scripts/bench_faust_floor.py`): a `PendingMessage`, a `FutureMessage`, its callbacks, two
sensor calls and the aiokafka producer's own per-message path, for every record. Our agents
always send a whole batch and wait for all of it, so the per-record work buys nothing. Here
the records are grouped by partition (murmur2 of the key, `streams.kafka.partitioner`: the
partitioner the app's producer is given too, so a key lands where it always did), appended to
one `BatchBuilder` per partition (aiokafka's public `create_batch`/`send_batch`), and waited
for as one future per partition.

The producer is the app's own aiokafka producer (one producer per process: the changelog
writes Faust makes go through it too), taken from Faust's driver once it has started.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any

import faust
from aiokafka import AIOKafkaProducer

from streams.kafka.partitioner import KeyPartitioner
from streams.runtime.records import OutgoingRecord

SentCounter = Callable[[str, int], None]


def app_producer(app: faust.App) -> AIOKafkaProducer:
    """The aiokafka producer behind Faust's (started with the app; raises before that)."""
    producer: AIOKafkaProducer = app.producer._ensure_producer()  # type: ignore[attr-defined]
    return producer


class PartitionBatches:
    """Sends records to one topic as one batch per partition; see the module doc."""

    def __init__(self, producer: Callable[[], AIOKafkaProducer], topic: str) -> None:
        self._producer = producer
        self._topic = topic
        self._partitioner = KeyPartitioner()

    async def send(self, records: Sequence[OutgoingRecord]) -> list[asyncio.Future[Any]]:
        """Queue every record; the futures resolve when the broker acknowledged their batch."""
        producer = self._producer()
        partitions = sorted(await producer.partitions_for(self._topic))
        by_partition: dict[int, list[OutgoingRecord]] = defaultdict(list)
        for record in records:
            partition = self._partitioner(record.key, partitions, partitions)
            by_partition[partition].append(record)
        deliveries: list[asyncio.Future[Any]] = []
        for partition, grouped in by_partition.items():
            sent = await send_to_partition(producer, self._topic, partition, grouped)
            deliveries.extend(future for future, _ in sent)
        return deliveries


async def send_to_partition(
    producer: AIOKafkaProducer, topic: str, partition: int, records: Sequence[OutgoingRecord]
) -> list[tuple[asyncio.Future[Any], int]]:
    """Queue `records` on one partition in as few record batches as fit: (future, records) per
    batch; a future resolves to the batch's `RecordMetadata` (its base offset) once acknowledged.

    Timestamps are the time of appending (the builder's, given None).
    """
    sent: list[tuple[asyncio.Future[Any], int]] = []
    batch = producer.create_batch()
    for record in records:
        headers = list(record.headers)
        if batch.append(timestamp=None, key=record.key, value=record.value, headers=headers):
            continue
        # Full: send it and start the next with this record (an empty batch takes any one
        # record, as a batch of its own, like aiokafka's `send`).
        sent.append(
            (await producer.send_batch(batch, topic, partition=partition), batch.record_count())
        )
        batch = producer.create_batch()
        batch.append(timestamp=None, key=record.key, value=record.value, headers=headers)
    if batch.record_count():
        sent.append(
            (await producer.send_batch(batch, topic, partition=partition), batch.record_count())
        )
    return sent


async def all_delivered(deliveries: list[asyncio.Future[Any]]) -> None:
    """Return once every delivery succeeded; raise the first failure as soon as it happens.

    `asyncio.wait`, not `gather`: a cancelled wait must not cancel the futures the producer
    resolves, and `wait` never cancels what it waits for (a shield per record did the same at
    twice the cost: it was 1.5 % of a worker's samples).
    """
    done, _ = await asyncio.wait(deliveries, return_when=asyncio.FIRST_EXCEPTION)
    for delivery in done:
        if not delivery.cancelled() and (failure := delivery.exception()) is not None:
            raise failure
