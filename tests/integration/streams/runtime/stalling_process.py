"""The small real Faust worker of `stalling_worker` as a child process, and what it forwarded."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

from streams.settings import Settings
from tests.integration.child_process import ChildProcess
from tests.integration.kafka_io import records_to_end
from tests.integration.streams.runtime.stalling_worker import READY
from tests.integration.worker_process import settings_env


class StallingWorker(ChildProcess):
    name = "stalling worker"
    start_deadline_s = 120.0

    def __init__(self, settings: Settings, log_path: Path) -> None:
        env = {**os.environ, **settings_env(settings)}
        super().__init__("tests.integration.streams.runtime.stalling_worker", env, log_path)

    def is_ready(self) -> bool:
        return READY in self.log_path.read_text(errors="replace")


async def forwarded(settings: Settings) -> list[bytes]:
    records = await records_to_end(settings, f"{settings.topic_prefix}stall.out")
    return [record.value for record in records if record.value is not None]


# Generous: a worker starting, joining its group or getting partitions takes this at most.
WAIT_DEADLINE_S = 60.0


async def logged(worker: StallingWorker, line: str) -> None:
    """Wait until `worker`'s log has `line`; fail with its log if it exits or never does."""
    deadline = time.monotonic() + WAIT_DEADLINE_S
    while line not in worker.log_tail(1_000_000):
        assert worker.process.poll() is None, f"exited before {line!r}:\n{worker.log_tail()}"
        assert time.monotonic() < deadline, f"never logged {line!r}:\n{worker.log_tail()}"
        await asyncio.sleep(0.1)


async def all_forwarded(settings: Settings, values: list[bytes], worker: StallingWorker) -> None:
    """Wait until every one of `values` is on `stall.out`; fail with `worker`'s log if not."""
    deadline = time.monotonic() + WAIT_DEADLINE_S
    while not set(values) <= set(await forwarded(settings)):
        assert time.monotonic() < deadline, f"not forwarded:\n{worker.log_tail()}"
        await asyncio.sleep(0.5)
