"""Input written in Kafka transactions (as an upstream using exactly-once producers writes it):
every commit marker takes an offset no consumer ever sees. A worker must commit past them, to
the end of each partition (else its lag never reaches zero and its stall watchdog sees a record
waiting forever), and a worker started again from those commits must carry on from there."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

from aiokafka import TopicPartition
from confluent_kafka import Producer

from streams.settings import Settings
from tests.integration.kafka_io import uncommitted
from tests.integration.streams.runtime.stalling_process import StallingWorker, forwarded
from tests.integration.worker_process import eventually

TRANSACTIONS = 8
RECORDS_PER_TRANSACTION = 5


def produce_in_transactions(settings: Settings, tag: str) -> list[bytes]:
    """`TRANSACTIONS` committed transactions of records spread over every partition."""
    producer = Producer(
        {
            "bootstrap.servers": settings.kafka.bootstrap,
            "transactional.id": f"{settings.topic_prefix}{uuid.uuid4().hex}",
        }
    )
    producer.init_transactions(30)
    topic = f"{settings.topic_prefix}stall.in"
    values = []
    for transaction in range(TRANSACTIONS):
        producer.begin_transaction()
        for n in range(RECORDS_PER_TRANSACTION):
            value = f"{tag}-{transaction}-{n}".encode()
            producer.produce(topic, value=value, partition=n % settings.kafka.partitions)
            values.append(value)
        producer.commit_transaction(30)
    return values


async def wait_until_done(settings: Settings, worker: StallingWorker, values: list[bytes]) -> None:
    """Every value forwarded, and every partition committed to its end, markers included."""

    async def all_forwarded() -> bool | None:
        return True if set(values) <= set(await forwarded(settings)) else None

    topic = f"{settings.topic_prefix}stall.in"
    partitions = [TopicPartition(topic, p) for p in range(settings.kafka.partitions)]
    short: dict[TopicPartition, tuple[int | None, int]] = {}

    async def all_committed() -> bool | None:
        short.clear()
        short.update(await uncommitted(settings, settings.worker.app_id, partitions))
        return None if short else True

    async def diagnose() -> str:
        return f"short of their end (committed, end): {short}"

    await eventually(all_forwarded, what="every record forwarded", worker=worker)
    await eventually(all_committed, what="committed to the end", worker=worker, diagnose=diagnose)


async def test_a_worker_commits_past_transaction_markers_and_resumes_after_them(
    stall_settings: Settings, tmp_path: Path
) -> None:
    settings = stall_settings
    first = StallingWorker(settings, tmp_path / "first.log")
    with first.running(must_exit_cleanly=True):
        before = await asyncio.to_thread(produce_in_transactions, settings, "before")
        await wait_until_done(settings, first, before)
    second = StallingWorker(settings, tmp_path / "second.log")
    with second.running(must_exit_cleanly=True):
        after = await asyncio.to_thread(produce_in_transactions, settings, "after")
        await wait_until_done(settings, second, after)
    assert set(await forwarded(settings)) == set(before + after)
