"""`BroadcastConsumer` on a real broker: every consumer reads every record produced after it
has its position, however many consumers there are (no consumer group splits the records), and
nothing from before it started."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

from streams.runtime import BroadcastConsumer
from streams.settings import Settings
from tests.integration.kafka_io import kafka_producer, topic_catalog

DEADLINE_S = 30.0
Collect = Callable[[Sequence[bytes | None]], None]


async def test_each_consumer_reads_every_command_produced_after_its_start(
    settings: Settings,
) -> None:
    topic = topic_catalog(settings).notifications_provider_commands.name
    seen: list[list[bytes | None]] = [[], []]
    arrived = asyncio.Event()

    def collector(index: int) -> Collect:
        def collect(values: Sequence[bytes | None]) -> None:
            seen[index].extend(values)
            arrived.set()

        return collect

    async with kafka_producer(settings) as producer:
        await producer.send_and_wait(topic, key=b"sendgrid", value=b"before")
        consumers = [
            BroadcastConsumer(settings.kafka, topic, collector(n), client_id=f"test-{n}")
            for n in range(2)
        ]
        for consumer in consumers:
            await consumer.start()
        try:
            # A consumer starts at the end of the topic once it has its position; probes go
            # until both have one, and every record after that must reach both.
            async with asyncio.timeout(DEADLINE_S):
                while not all(b"probe" in values for values in seen):
                    await producer.send_and_wait(topic, key=b"probe", value=b"probe")
                    await asyncio.sleep(0.2)
            sent = [f"reset-{n}".encode() for n in range(5)]
            for value in sent:
                await producer.send_and_wait(topic, key=value, value=value)
            async with asyncio.timeout(DEADLINE_S):
                while True:
                    arrived.clear()  # before looking: what arrives after sets it again
                    if all(set(sent) <= set(values) for values in seen):
                        break
                    await arrived.wait()
        finally:
            for consumer in consumers:
                await consumer.stop()
    for values in seen:
        assert b"before" not in values
        assert [v for v in values if v != b"probe"] == sent
