"""EventProducer on the real Kafka: acknowledged positions, and a broker that is not there."""

from __future__ import annotations

import socket

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from streams.errors import ServiceUnavailableError
from streams.kafka.event_producer import EventProducer
from streams.settings import KafkaSettings, Settings
from tests.integration.kafka_io import topic_catalog


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


async def test_a_send_returns_the_position_the_broker_stored_the_record_at(
    settings: Settings,
) -> None:
    topic = topic_catalog(settings).orders_events.name
    async with EventProducer(settings.kafka) as producer:
        await producer.ping(5.0)
        first = await producer.send(topic, b"ord-1", b"one", [("event_type", b"order.created")])
        second = await producer.send(topic, b"ord-1", b"two")
    assert (first.topic, second.partition, second.offset) == (
        topic,
        first.partition,
        first.offset + 1,
    )

    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka.bootstrap, group_id=None)
    await consumer.start()
    try:
        tp = TopicPartition(topic, first.partition)
        consumer.assign([tp])
        consumer.seek(tp, first.offset)
        record = await consumer.getone()
    finally:
        await consumer.stop()
    assert (record.key, record.value, record.headers) == (
        b"ord-1",
        b"one",
        (("event_type", b"order.created"),),
    )


async def test_with_no_broker_start_survives_and_send_and_ping_report_kafka() -> None:
    kafka = KafkaSettings(bootstrap=f"127.0.0.1:{_closed_port()}", delivery_timeout_s=2.0)
    producer = EventProducer(kafka)
    await producer.start()
    assert not producer.started
    with pytest.raises(ServiceUnavailableError) as caught:
        await producer.send("anything", b"k", b"v")
    assert caught.value.service == "kafka"
    with pytest.raises(ServiceUnavailableError):
        await producer.ping(1.0)
    await producer.stop()
