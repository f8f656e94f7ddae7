"""Reading the compacted templates topic to its end on the real broker: everything the first
time, only what is new afterwards, every partition, and a missing topic said so."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import replace

import pytest
from aiokafka import AIOKafkaProducer

from streams.errors import ServiceUnavailableError
from streams.kafka.compacted_topic import CompactedTopicReader
from streams.kafka.topic_admin import delete_topics_blocking, ensure_topics_blocking
from streams.settings import Settings
from tests.integration.kafka_io import kafka_producer, topic_catalog


@pytest.fixture
def fresh(stack_settings: Settings) -> Iterator[Settings]:
    settings = stack_settings.model_copy(update={"topic_prefix": f"ct{uuid.uuid4().hex[:8]}-"})
    yield settings
    delete_topics_blocking(settings.kafka, [settings.topic_prefix])


async def _send(producer: AIOKafkaProducer, topic: str, *keys: str) -> None:
    for key in keys:
        await producer.send_and_wait(topic, f"value of {key}".encode(), key=key.encode())


async def test_reads_to_the_end_then_only_what_is_new(fresh: Settings) -> None:
    # The reader takes any compacted topic: this one has several partitions, to read them all.
    spec = replace(topic_catalog(fresh).templates, partitions=fresh.kafka.partitions)
    assert spec.partitions > 1
    ensure_topics_blocking(fresh.kafka, [spec])
    reader = CompactedTopicReader(fresh.kafka, spec.name, "test")
    try:
        assert await reader.read_to_end() == []
        keys = [f"t{n}/1" for n in range(12)]  # spread over the partitions
        async with kafka_producer(fresh) as producer:
            await _send(producer, spec.name, *keys)
            first = await reader.read_to_end()
            assert sorted(r.key for r in first) == sorted(k.encode() for k in keys)
            assert len({r.partition for r in first}) > 1
            assert await reader.read_to_end() == []
            await _send(producer, spec.name, "t0/2")
            (new,) = await reader.read_to_end()
        assert (new.key, new.value) == (b"t0/2", b"value of t0/2")
        assert reader.records_read == len(keys) + 1
    finally:
        await reader.close()


async def test_a_missing_topic_is_unavailable_not_created(fresh: Settings) -> None:
    name = f"{fresh.topic_prefix}notifications.templates"
    reader = CompactedTopicReader(fresh.kafka, name, "test")
    with pytest.raises(ServiceUnavailableError, match="does not exist"):
        await reader.read_to_end()
    await reader.close()
