"""A worker whose stop never finishes ends at its stop deadline, with its own exit status and
a log that names the step it was waiting in (the small real worker of `stalling_worker`, armed
with `hang-stop`, waits for ever inside its stop)."""

from __future__ import annotations

import signal
from pathlib import Path

from streams.runtime.stop_deadline import STOP_TIMEOUT_EXIT_CODE
from streams.settings import Settings
from tests.integration.kafka_io import kafka_producer
from tests.integration.streams.runtime.stalling_process import StallingWorker, logged
from tests.integration.streams.runtime.stalling_worker import HANG_STOP_PREFIX, STOP_HANGING

STOP_TIMEOUT_S = 3.0


async def test_a_stop_that_never_finishes_ends_at_the_deadline_naming_where_it_waits(
    stall_settings: Settings, tmp_path: Path
) -> None:
    worker_settings = stall_settings.worker.model_copy(
        update={"stop_timeout_s": STOP_TIMEOUT_S, "send_timeout_s": STOP_TIMEOUT_S / 2}
    )
    settings = stall_settings.model_copy(update={"worker": worker_settings})
    worker = StallingWorker(settings, tmp_path / "worker.log")
    worker.stop_deadline_s = 30.0  # the test's own bound, far past the worker's
    with worker.running():
        async with kafka_producer(settings) as producer:
            await producer.send_and_wait(
                f"{settings.topic_prefix}stall.in",
                HANG_STOP_PREFIX + str(settings.worker.web_port).encode(),
            )
        await logged(worker, "next stop: hang")
        worker.process.send_signal(signal.SIGTERM)
        await logged(worker, STOP_HANGING)
        returncode = worker.stop()
    log = worker.log_tail(1_000_000)
    assert returncode == STOP_TIMEOUT_EXIT_CODE, log[-6000:]
    assert f"worker did not stop within {STOP_TIMEOUT_S} s" in log
    [hung] = [line for line in log.splitlines() if "_hang@" in line]
    assert hung.startswith("task ")  # the stop's own task, down to the step that never returned
