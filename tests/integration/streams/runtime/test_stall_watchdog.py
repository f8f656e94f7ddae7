"""The stall watchdog on a real worker: each form a silent stall can take, induced in a small
real Faust worker (`stalling_worker`), ends with every record after it forwarded."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from streams.settings import Settings
from tests.integration.kafka_io import kafka_producer
from tests.integration.streams.runtime.stalling_process import StallingWorker, forwarded
from tests.integration.streams.runtime.stalling_worker import FORMS, STALL_PREFIX

RECORDS_AFTER = 30
# The watchdog looks every second and acts after 3 s stalled; its first step must do.
FORWARDED_DEADLINE_S = 45.0


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
