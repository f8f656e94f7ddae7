"""The tracker's `deliveries` changes written behind, on real workers: a notification's statuses
read in batches of their own reach the changelog as one record, their offsets are committed only
after it, and what is held is written when the worker stops or a rebalance revokes its partitions
(`worker.changelog_flush_interval_s`; `streams.runtime.changelog_writes`).

The interval is far longer than any test here, so whatever reaches the changelog got there
because the worker stopped or was rebalanced, not because the interval passed.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiokafka import AIOKafkaProducer, TopicPartition

from streams.kafka.wire import encode
from streams.settings import Settings
from tests.integration.kafka_io import kafka_producer, records_to_end, topic_catalog, uncommitted
from tests.integration.worker_process import (
    OPERATOR_HEADERS,
    WorkerProcess,
    another_worker,
    eventually,
    make_worker_settings,
    own_topics,
)
from tests.unit.agents.delivery_factories import status_event

HELD_S = 600.0
STATUSES = ("queued", "sending", "sent")


@pytest.fixture
def settings(stack_settings: Settings, tmp_path: Path) -> Iterator[Settings]:
    base = make_worker_settings(stack_settings, tmp_path)
    worker = base.worker.model_copy(update={"changelog_flush_interval_s": HELD_S})
    with own_topics(base.model_copy(update={"worker": worker})) as settings:
        yield settings


async def track_statuses(
    worker: WorkerProcess, settings: Settings, producer: AIOKafkaProducer, n: str
) -> None:
    """Each status produced once the tracker holds the one before: a batch each."""
    topic = topic_catalog(settings).for_topic("notifications.status").name
    for at_s, state in enumerate(STATUSES):
        await producer.send_and_wait(topic, encode(status_event(n, state, at_s)), key=n.encode())
        await eventually(
            lambda state=state: tracked_state(worker, n, state),
            what=f"{n} {state} in the worker's deliveries table",
            worker=worker,
        )


async def tracked_state(worker: WorkerProcess, n: str, state: str) -> str | None:
    url = f"{worker.web_url}/v1/tables/deliveries/{n}"
    async with aiohttp.ClientSession(headers=OPERATOR_HEADERS) as http, http.get(url) as response:
        if response.status != 200:
            return None
        found: str = (await response.json())["value"]["current"]["state"]
        return found if found == state else None


async def changelog_entries(settings: Settings, n: str) -> list[dict[str, Any]]:
    changelog = f"{settings.worker.app_id}-deliveries-changelog"
    records = await records_to_end(settings, changelog)
    return [json.loads(r.value) for r in records if r.key == n.encode() and r.value is not None]


async def status_partitions_uncommitted(settings: Settings) -> dict[TopicPartition, Any]:
    topic = topic_catalog(settings).for_topic("notifications.status").name
    partitions = [TopicPartition(topic, p) for p in range(settings.kafka.partitions)]
    return await uncommitted(settings, settings.worker.app_id, partitions)


async def test_statuses_held_are_not_committed_and_are_written_once_when_the_worker_stops(
    settings: Settings, tmp_path: Path
) -> None:
    n = f"n-{uuid.uuid4()}"
    worker = WorkerProcess(settings, tmp_path / "worker.log")
    with worker.running():
        async with kafka_producer(settings) as producer:
            await track_statuses(worker, settings, producer, n)
        assert await changelog_entries(settings, n) == []  # held: the interval has not passed
        # Not in the changelog, so not committed: a crash now would have them read again.
        assert await status_partitions_uncommitted(settings) != {}
        assert worker.stop() == 0
    [entry] = await changelog_entries(settings, n)  # three batches, one record
    assert entry["current"]["state"] == "sent"


async def test_a_rebalance_writes_what_the_worker_held_before_its_partitions_move(
    settings: Settings, tmp_path: Path
) -> None:
    n = f"n-{uuid.uuid4()}"
    first = WorkerProcess(settings, tmp_path / "first.log")
    with first.running(must_exit_cleanly=True):
        async with kafka_producer(settings) as producer:
            await track_statuses(first, settings, producer, n)
        assert await changelog_entries(settings, n) == []
        joining = another_worker(settings, tmp_path / "second-data")
        second = WorkerProcess(joining, tmp_path / "second.log")
        with second.running(must_exit_cleanly=True):  # ready: the rebalance has happened

            async def written() -> list[dict[str, Any]] | None:
                return await changelog_entries(settings, n) or None

            [entry] = await eventually(written, what=f"{n} in the changelog", worker=first)
            assert entry["current"]["state"] == "sent"
