"""The README's examples, run as the processes a reader would run, against the real stack.

The API serves the schema registry the examples talk to; it runs on this test's event loop, so
the examples are awaited as subprocesses (never waited for synchronously) while it serves them.
"""

from __future__ import annotations

import asyncio
import json
import sys
import uuid
import zlib
from pathlib import Path

from pytest_aiohttp import AiohttpServer

from api.app import create_app
from schemas import examples
from schemas.orders import OrderEvent
from streams.kafka.codec import wire_codec
from streams.kafka.event_producer import EventProducer
from streams.kafka.partitioner import KeyPartitioner
from streams.settings import Settings
from tests.integration.api.support import topic_records
from tests.integration.kafka_io import topic_catalog

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
RUN_TIMEOUT_S = 90.0


async def run_example(script: str, *argv: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(EXAMPLES / script),
        *argv,
        env={"PATH": "/usr/bin:/bin"},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with asyncio.timeout(RUN_TIMEOUT_S):
            out, err = await process.communicate()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def registry_url(aiohttp_server: AiohttpServer, settings: Settings) -> str:
    server = await aiohttp_server(create_app(settings))
    return f"http://127.0.0.1:{server.port}/schema-registry"


def key_placed_apart_by_crc32(partitions: int) -> str:
    """An order id that librdkafka's default partitioner (`consistent_random`: CRC-32 of the
    key) puts in another partition than Kafka's murmur2 rule does."""
    every = list(range(partitions))
    while True:
        order_id = f"ord-{uuid.uuid4().hex[:12]}"
        key = order_id.encode()
        if zlib.crc32(key) % partitions != KeyPartitioner()(key, every, every):
            return order_id


async def test_the_producing_example_writes_an_event_our_codec_reads(
    aiohttp_server: AiohttpServer, settings: Settings
) -> None:
    url = await registry_url(aiohttp_server, settings)
    topic = topic_catalog(settings).orders_events.name
    order_id = key_placed_apart_by_crc32(settings.kafka.partitions)

    code, out, err = await run_example(
        "produce_with_confluent.py",
        "--bootstrap",
        settings.kafka.bootstrap,
        "--registry-url",
        url,
        "--topic",
        topic,
        "--order-id",
        order_id,
    )

    assert code == 0, err
    receipt = json.loads(out)
    [record] = await topic_records(settings, "orders.events")
    assert (record.topic, record.partition, record.offset) == (
        receipt["topic"],
        receipt["partition"],
        receipt["offset"],
    )
    assert record.key == order_id.encode()
    # Where the API's and the workers' producers put the same key (Kafka's murmur2 rule): a
    # key's events reach one partition whoever produced them.
    partitions = list(range(settings.kafka.partitions))
    assert record.partition == KeyPartitioner()(order_id.encode(), partitions, partitions)
    event = (await wire_codec(settings)).decode(record.value, OrderEvent)
    assert str(event.event_id) == receipt["event_id"]
    assert (event.event_type, event.payload.id, event.payload.status) == (
        "order.created",
        order_id,
        "pending",
    )


async def test_the_consuming_example_prints_what_our_codec_wrote(
    aiohttp_server: AiohttpServer, settings: Settings
) -> None:
    url = await registry_url(aiohttp_server, settings)
    topic = topic_catalog(settings).orders_events.name
    example = examples.event("order.paid")
    assert isinstance(example, OrderEvent)
    event = example.model_copy(update={"event_id": uuid.uuid4()})
    async with EventProducer(settings.kafka) as producer:
        value = (await wire_codec(settings)).encode(event)
        position = await producer.send(topic, event.payload.id.encode(), value)

    code, out, err = await run_example(
        "consume_with_confluent.py",
        "--bootstrap",
        settings.kafka.bootstrap,
        "--registry-url",
        url,
        "--topic",
        topic,
        "--group",
        f"{settings.worker.app_id}-analytics",
        "--max",
        "1",
        "--timeout-s",
        "60",
    )

    assert code == 0, err
    [line] = [json.loads(text) for text in out.splitlines()]
    assert (line["topic"], line["partition"], line["offset"]) == (
        position.topic,
        position.partition,
        position.offset,
    )
    assert line["key"] == event.payload.id
    assert OrderEvent.model_validate(line["value"]) == event
