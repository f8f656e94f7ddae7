"""The small real Faust worker of `stalling_worker` as a child process, and what it forwarded."""

from __future__ import annotations

import os
from pathlib import Path

from streams.settings import Settings
from tests.integration.child_process import ChildProcess
from tests.integration.kafka_io import records_to_end
from tests.integration.streams.runtime.stalling_worker import READY
from tests.integration.worker_process import eventually, settings_env


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


async def logged(worker: StallingWorker, line: str) -> None:
    """Wait until `worker`'s log has `line`; fail with its log if it exits or never does."""

    async def found() -> bool | None:
        return True if line in worker.log_tail(1_000_000) else None

    await eventually(found, what=f"{line!r} in the log", worker=worker)


async def all_forwarded(settings: Settings, values: list[bytes], worker: StallingWorker) -> None:
    """Wait until every one of `values` is on `stall.out`; fail with `worker`'s log if not."""

    async def all_there() -> bool | None:
        return True if set(values) <= set(await forwarded(settings)) else None

    await eventually(all_there, what="every record forwarded", worker=worker)
