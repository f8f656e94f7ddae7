"""The per-notification tables on a real worker with RocksDB, upgraded from a version that kept
every notification: the worker finds `deliveries` with an entry in a changelog that is compacted
only, sets the changelog's retention to the tables' own (`compact,delete`, 14 days, segments
closed daily), recovers the entry into a TTL store of its own directory, and folds the
notification's next status onto it."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from confluent_kafka.admin import AdminClient, ConfigResource  # type: ignore[attr-defined]

from agents.tracking.pipeline import TABLE_NAME
from agents.tracking.state import fold, status_step, to_entry
from streams.kafka.wire import encode
from streams.runtime.durable_table import EXPIRING_SUFFIX
from streams.settings import Settings
from tests.integration.kafka_io import kafka_producer, topic_catalog
from tests.integration.worker_process import (
    OPERATOR_HEADERS,
    WorkerProcess,
    eventually,
    make_worker_settings,
    own_topics,
    worker_recovering,
)
from tests.unit.agents.delivery_factories import status_event

DAY_MS = 24 * 3600 * 1000
UPGRADED = f"n-upgraded-{uuid.uuid4().hex[:8]}"
EARLIER = [status_event(UPGRADED, state, at_s) for state, at_s in (("queued", 0), ("sent", 2))]


def _entry(events: list[Any]) -> dict[str, Any]:
    delivery = None
    for event in events:
        delivery, _ = fold(delivery, UPGRADED, *status_step(event))
    assert delivery is not None
    return to_entry(delivery)


@pytest.fixture(scope="module")
def worker_settings(
    stack_settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Settings]:
    base = make_worker_settings(stack_settings, tmp_path_factory.mktemp("unused"))
    data_dir = tmp_path_factory.mktemp("worker-data") / "tables"
    rocksdb = base.worker.model_copy(update={"store": "rocksdb://", "data_dir": str(data_dir)})
    with own_topics(base.model_copy(update={"worker": rocksdb})) as settings:
        yield settings


@pytest.fixture(scope="module")
def worker(
    worker_settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WorkerProcess]:
    log_path = tmp_path_factory.mktemp("worker") / "worker.log"
    with worker_recovering(
        worker_settings, log_path, TABLE_NAME, UPGRADED, _entry(EARLIER)
    ) as process:
        yield process


def _store_names(data_dir: Path) -> set[str]:
    return {path.name for path in data_dir.rglob("*.db")}


async def _served(worker: WorkerProcess) -> dict[str, Any] | None:
    url = f"{worker.web_url}/v1/tables/{TABLE_NAME}/{UPGRADED}"
    async with aiohttp.ClientSession(headers=OPERATOR_HEADERS) as http, http.get(url) as response:
        if response.status == 404:
            return None
        assert response.status == 200, await response.text()
        value: dict[str, Any] = (await response.json())["value"]
        return value


def test_the_changelog_an_earlier_version_left_gets_the_tables_retention(
    worker: WorkerProcess, worker_settings: Settings
) -> None:
    name = f"{worker_settings.worker.app_id}-{TABLE_NAME}-changelog"
    admin = AdminClient({"bootstrap.servers": worker_settings.kafka.bootstrap})
    resource = ConfigResource("topic", name)
    configs = admin.describe_configs([resource])[resource].result(timeout=10)
    assert configs["cleanup.policy"].value == "compact,delete"
    assert configs["retention.ms"].value == str(14 * DAY_MS)
    assert configs["segment.ms"].value == str(DAY_MS)


async def test_the_recovered_entry_is_in_a_ttl_store_and_folds_the_next_status(
    worker: WorkerProcess, worker_settings: Settings
) -> None:
    assert await _served(worker) == _entry(EARLIER)
    stores = _store_names(Path(worker_settings.worker.data_dir))
    assert any(name.startswith(f"{TABLE_NAME}{EXPIRING_SUFFIX}-") for name in stores), stores
    assert not any(re.fullmatch(rf"{TABLE_NAME}-\d+\.db", name) for name in stores), stores

    delivered = status_event(UPGRADED, "delivered", 5)
    status = topic_catalog(worker_settings).for_topic("notifications.status").name
    async with kafka_producer(worker_settings) as producer:
        await producer.send_and_wait(status, encode(delivered), key=UPGRADED.encode())

    async def folded() -> dict[str, Any] | None:
        entry = await _served(worker)
        return entry if entry is not None and entry != _entry(EARLIER) else None

    entry = await eventually(folded, what=f"{UPGRADED} delivered", worker=worker)
    assert entry == _entry([*EARLIER, delivered])
