"""Publishing: `TopicPublisher` waits for every delivery, and `PartitionBatches` groups records
into one record batch per partition, placed where aiokafka's partitioner places each key."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any, cast

import pytest
from aiokafka.errors import KafkaConnectionError, KafkaTimeoutError
from aiokafka.partitioner import murmur2
from aiokafka.producer.message_accumulator import BatchBuilder
from faust.types import TopicT

from streams.errors import ServiceUnavailableError
from streams.runtime.partition_batches import PartitionBatches
from streams.runtime.records import OutgoingRecord
from streams.runtime.topics import TopicPublisher


class FakeApp:
    def __init__(self) -> None:
        self.sent: list[tuple[str, int]] = []

    def count_sent(self, topic: str, records: int) -> None:
        self.sent.append((topic, records))


class FakeTopic:
    def __init__(self) -> None:
        self.app = FakeApp()

    def get_topic_name(self) -> str:
        return "p-notifications.status"


class FakeSender:
    """Hands out the futures it is given, one per `send`, and records what it was asked."""

    def __init__(self, *deliveries: asyncio.Future[Any], fail: Exception | None = None) -> None:
        self.deliveries = list(deliveries)
        self.fail = fail
        self.sent: list[Sequence[OutgoingRecord]] = []

    async def send(self, records: Sequence[OutgoingRecord]) -> list[asyncio.Future[Any]]:
        if self.fail is not None:
            raise self.fail
        self.sent.append(records)
        return self.deliveries


def _future(result: object = None) -> asyncio.Future[Any]:
    future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    if isinstance(result, BaseException):
        future.set_exception(result)
    elif result is not None:
        future.set_result(result)
    return future


def _publisher(sender: FakeSender) -> tuple[TopicPublisher, FakeApp]:
    topic = FakeTopic()
    return TopicPublisher(cast(TopicT, topic), sender), topic.app


async def test_a_publisher_sends_the_batch_and_counts_it_once_delivered() -> None:
    sender = FakeSender(_future("ok"), _future("ok"))
    publisher, app = _publisher(sender)
    records = [OutgoingRecord(b"k", b"v", (("h", b"1"),)), OutgoingRecord(None, b"w")]
    await publisher.send_all(records)
    assert sender.sent == [records]
    assert app.sent == [("p-notifications.status", 2)]


async def test_a_publisher_with_nothing_to_send_sends_nothing() -> None:
    sender = FakeSender()
    publisher, app = _publisher(sender)
    await publisher.send_all([])
    assert (sender.sent, app.sent) == ([], [])


async def test_a_cancelled_publisher_leaves_its_deliveries_to_the_producer() -> None:
    """The records are in the producer's buffer: cancelling the wait must not cancel the
    futures the producer will resolve."""
    delivery = _future()
    publisher, _ = _publisher(FakeSender(delivery))
    waiting = asyncio.ensure_future(publisher.send_all([OutgoingRecord(b"k", b"v")]))
    await asyncio.sleep(0)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert not delivery.cancelled()


async def test_a_failed_delivery_fails_the_publisher_before_the_others_are_in() -> None:
    failing, pending = _future(), _future()
    publisher, app = _publisher(FakeSender(failing, pending))
    waiting = asyncio.ensure_future(publisher.send_all([OutgoingRecord(b"k", b"v")] * 2))
    await asyncio.sleep(0)
    failing.set_exception(KafkaTimeoutError())
    with pytest.raises(ServiceUnavailableError):
        await asyncio.wait_for(waiting, timeout=1)
    assert not pending.done()  # still the producer's to resolve
    assert app.sent == []


@pytest.mark.parametrize("failure", ["send", "delivery"])
async def test_a_publisher_failure_is_a_retriable_kafka_error(failure: str) -> None:
    if failure == "send":
        sender = FakeSender(fail=KafkaConnectionError())
    else:
        sender = FakeSender(_future(KafkaTimeoutError()))
    publisher, _ = _publisher(sender)
    with pytest.raises(ServiceUnavailableError) as raised:
        await publisher.send_all([OutgoingRecord(b"k", b"v")])
    assert raised.value.service == "kafka"


class FakeProducer:
    """aiokafka's batch interface over real `BatchBuilder`s, `batch_bytes` each."""

    def __init__(self, partitions: int, batch_bytes: int = 16 * 1024) -> None:
        self.partitions = partitions
        self.batch_bytes = batch_bytes
        self.batches: list[tuple[str, int, int]] = []

    async def partitions_for(self, topic: str) -> set[int]:
        return set(range(self.partitions))

    def create_batch(self) -> BatchBuilder:
        return BatchBuilder(self.batch_bytes, 0, is_transactional=0)

    async def send_batch(
        self, batch: BatchBuilder, topic: str, *, partition: int
    ) -> asyncio.Future[Any]:
        self.batches.append((topic, partition, batch.record_count()))
        return _future("delivered")


def _java_partition(key: bytes, partitions: int) -> int:
    """Kafka's default partitioner for a keyed record (the Java client's, and aiokafka's)."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions


async def test_records_go_in_one_batch_per_partition_where_their_key_belongs() -> None:
    producer = FakeProducer(partitions=6)
    keys = [f"user-{n}".encode() for n in range(40)]
    batches = PartitionBatches(lambda: cast(Any, producer), "p-dispatch")
    deliveries = await batches.send([OutgoingRecord(key, b"v") for key in keys])
    expected: dict[int, int] = {}
    for key in keys:
        partition = _java_partition(key, 6)
        expected[partition] = expected.get(partition, 0) + 1
    assert {partition: count for _, partition, count in producer.batches} == expected
    assert len(deliveries) == len(expected) == len(producer.batches)


async def test_a_full_batch_is_sent_and_the_rest_goes_in_the_next() -> None:
    producer = FakeProducer(partitions=1, batch_bytes=1024)
    batches = PartitionBatches(lambda: cast(Any, producer), "p-dispatch")
    deliveries = await batches.send([OutgoingRecord(b"k", bytes(300)) for _ in range(10)])
    counts = [count for _, _, count in producer.batches]
    assert sum(counts) == 10
    assert len(counts) > 1
    assert len(deliveries) == len(counts)


async def test_a_record_larger_than_a_batch_goes_in_a_batch_of_its_own() -> None:
    producer = FakeProducer(partitions=1, batch_bytes=512)
    batches = PartitionBatches(lambda: cast(Any, producer), "p-dispatch")
    small, large = OutgoingRecord(b"k", b"small"), OutgoingRecord(b"k", bytes(4096))
    await batches.send([small, large, small])
    assert [count for _, _, count in producer.batches] == [1, 1, 1]
