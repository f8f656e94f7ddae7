"""The stall watchdog on a real worker: each form a silent stall can take, induced in a small
real Faust worker (`stalling_worker`), ends with every record after it forwarded."""

from __future__ import annotations

from pathlib import Path

import pytest

from streams.settings import Settings
from tests.integration.kafka_io import kafka_producer
from tests.integration.streams.runtime.stalling_process import StallingWorker, all_forwarded, logged
from tests.integration.streams.runtime.stalling_worker import FORMS, STALL_PREFIX

RECORDS_AFTER = 30


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
            await logged(worker, f"stalled: {form}")
            after = [f"after-{n}".encode() for n in range(RECORDS_AFTER)]
            for value in after:
                await producer.send_and_wait(topic, value)
        await all_forwarded(settings, after, worker)
        log = worker.log_tail(1_000_000)
    assert "worker stalled" in log  # the watchdog acted: the stall was real and it ended it
    assert "Consumer state:" in log
    assert "asking its group for a rebalance" not in log  # its first step was enough
