"""Producing to and reading back from a test's own topics on the real Kafka."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from streams.kafka.catalog import TopicCatalog, TopicSpec
from streams.kafka.topic_admin import ensure_topics_blocking, topic_partitions_blocking
from streams.settings import Settings

READ_TIMEOUT_S = 30.0


def topic_catalog(settings: Settings) -> TopicCatalog:
    """A test's whole catalog, the dispatch retry topics included, as the worker builds it."""
    return TopicCatalog(settings.topic_prefix, settings.kafka, settings.dispatch.retry_delays_s)


@asynccontextmanager
async def kafka_producer(settings: Settings) -> AsyncIterator[AIOKafkaProducer]:
    """A producer that waits for every in-sync replica, as the API's does."""
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka.bootstrap, acks="all")
    await producer.start()
    try:
        yield producer
    finally:
        await producer.stop()


async def write_table_entry(settings: Settings, table: str, key: str, value: Any) -> None:
    """`table`'s entry for `key` in its changelog, as Faust keeps it (raw key, JSON value), for
    a worker yet to start to recover: what a deploy finds an earlier version left. Keyed as the
    table's input topics are, so in the partition of the key's events."""
    changelog = TopicSpec(
        name=f"{settings.worker.app_id}-{table}-changelog",
        key=f"{table} table key",
        partitions=settings.kafka.partitions,
        replication_factor=settings.kafka.replication_factor,
        cleanup_policy="compact",
        retention_ms=-1,
    )
    ensure_topics_blocking(settings.kafka, [changelog])
    async with kafka_producer(settings) as producer:
        await producer.send_and_wait(changelog.name, json.dumps(value).encode(), key=key.encode())


async def records_to_end(
    settings: Settings, topic: str, timeout_s: float = READ_TIMEOUT_S
) -> list[ConsumerRecord[bytes, bytes]]:
    """Every record of `topic` (a full name), from the beginning up to the current end.

    Reading up to the end offsets taken now gives an exact count without waiting to see whether
    more arrives: whoever wrote them was acknowledged by the broker, so all is already there.
    """
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka.bootstrap, enable_auto_commit=False, group_id=None
    )
    await consumer.start()
    try:
        # The topic's own partition count: not every topic has the catalog's.
        counts = await asyncio.to_thread(topic_partitions_blocking, settings.kafka, [topic])
        partitions = [TopicPartition(topic, p) for p in range(counts[topic])]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        records: list[ConsumerRecord[bytes, bytes]] = []
        async with asyncio.timeout(timeout_s):
            while [tp for tp, end in ends.items() if await consumer.position(tp) < end]:
                for batch in (await consumer.getmany(*partitions, timeout_ms=500)).values():
                    records.extend(batch)
        return records
    finally:
        await consumer.stop()


async def uncommitted(
    settings: Settings, group: str, partitions: list[TopicPartition]
) -> dict[TopicPartition, tuple[int | None, int]]:
    """The partitions whose offset committed by `group` is short of their end ->
    (committed, end)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka.bootstrap, group_id=group, enable_auto_commit=False
    )
    await consumer.start()
    try:
        ends = await consumer.end_offsets(partitions)
        committed = {tp: await consumer.committed(tp) for tp in partitions}
    finally:
        await consumer.stop()
    return {tp: (committed[tp], end) for tp, end in ends.items() if (committed[tp] or 0) < end}


async def group_members(settings: Settings, group: str) -> list[str]:
    """The member ids `group`'s coordinator holds now: a member that left is gone at once, one
    that did not stays until its session times out."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka.bootstrap)
    await admin.start()
    try:
        [response] = await admin.describe_consumer_groups([group])
    finally:
        await admin.close()
    [(error_code, _, _, _, _, members)] = response.groups
    assert error_code == 0, f"describing group {group}: error {error_code}"
    return [member_id for member_id, *_ in members]


@asynccontextmanager
async def earliest_consumer(settings: Settings, *topics: str) -> AsyncIterator[AIOKafkaConsumer]:
    """A consumer of `topics` (full names) from their beginning, in no group: it reads what
    is there and what comes, and commits nothing."""
    consumer = AIOKafkaConsumer(
        *topics,
        bootstrap_servers=settings.kafka.bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=None,
    )
    await consumer.start()
    try:
        yield consumer
    finally:
        await consumer.stop()
