"""The stall watchdog on a real worker: each form a silent stall can take, induced in a small
real Faust worker (`stalling_worker`), ends with every record after it forwarded."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from streams.catalog import TopicSpec
from streams.settings import Settings
from streams.topic_admin import delete_topics_blocking, ensure_topics_blocking
from tests.integration.child_process import ChildProcess
from tests.integration.kafka_io import kafka_producer, records_to_end
from tests.integration.streams.stalling_worker import FORMS, READY, STALL_PREFIX
from tests.integration.worker_process import make_worker_settings, settings_env

RECORDS_AFTER = 30
# The watchdog looks every second and acts after 3 s stalled; its first step must do.
FORWARDED_DEADLINE_S = 45.0


class StallingWorker(ChildProcess):
    name = "stalling worker"
    start_deadline_s = 120.0

    def __init__(self, settings: Settings, log_path: Path) -> None:
        env = {**os.environ, **settings_env(settings)}
        super().__init__("tests.integration.streams.stalling_worker", env, log_path)

    def is_ready(self) -> bool:
        return READY in self.log_path.read_text(errors="replace")


@pytest.fixture
def stall_settings(stack_settings: Settings, tmp_path: Path) -> Iterator[Settings]:
    base = make_worker_settings(stack_settings, tmp_path)
    worker = base.worker.model_copy(update={"stall_timeout_s": 3.0, "stall_check_interval_s": 1.0})
    settings = base.model_copy(update={"worker": worker})
    prefix = settings.topic_prefix
    specs = [
        TopicSpec(
            name=f"{prefix}stall.{name}",
            key="none",
            partitions=settings.kafka.partitions,
            replication_factor=1,
        )
        for name in ("in", "out")
    ]
    ensure_topics_blocking(settings, specs)
    yield settings
    delete_topics_blocking(settings, [prefix, settings.worker.app_id])


async def forwarded(settings: Settings) -> list[bytes]:
    records = await records_to_end(settings, f"{settings.topic_prefix}stall.out")
    return [record.value for record in records if record.value is not None]


@pytest.mark.parametrize("form", sorted(FORMS))
async def test_a_stalled_worker_is_restarted_by_its_watchdog_and_forwards_what_came_after(
    form: str, stall_settings: Settings, tmp_path: Path
) -> None:
    settings = stall_settings
    topic = f"{settings.topic_prefix}stall.in"
    worker = StallingWorker(settings, tmp_path / "worker.log")
    with worker.running(must_exit_cleanly=True):
        async with kafka_producer(settings) as producer:
            await producer.send_and_wait(topic, STALL_PREFIX + form.encode())
            deadline = time.monotonic() + FORWARDED_DEADLINE_S
            while f"stalled: {form}" not in worker.log_tail(100_000):
                assert time.monotonic() < deadline, f"never stalled:\n{worker.log_tail()}"
                await asyncio.sleep(0.1)
            after = [f"after-{n}".encode() for n in range(RECORDS_AFTER)]
            for value in after:
                await producer.send_and_wait(topic, value)
        deadline = time.monotonic() + FORWARDED_DEADLINE_S
        while not set(after) <= set(await forwarded(settings)):
            assert time.monotonic() < deadline, f"not forwarded:\n{worker.log_tail()}"
            await asyncio.sleep(0.5)
        log = worker.log_tail(1_000_000)
    assert "worker stalled" in log  # the watchdog acted: the stall was real and it ended it
    assert "Consumer state:" in log
    assert "asking its group for a rebalance" not in log  # its first step was enough
