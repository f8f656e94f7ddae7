"""A real worker process (`python -m agents`) for integration tests, and waiting on it.

Shared by every test package that needs the worker: the agents' own tests and the end-to-end
pipeline tests.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import pytest
from pydantic import BaseModel, SecretStr

from agents.worker.process import READY_MESSAGE
from streams.kafka.topic_admin import delete_topics_blocking, ensure_topics_blocking
from streams.runtime import free_port
from streams.settings import Settings
from tests.integration.child_process import ChildProcess
from tests.integration.conftest import _run_in_thread, isolated_settings
from tests.integration.kafka_io import topic_catalog, write_table_entry

T = TypeVar("T")

START_DEADLINE_S = 120.0
# Past the worker's own stop deadline (`worker.stop_timeout_s`, 45 s): a stop that hangs ends
# there, with the await chain of every task in the log, before the test kills it.
STOP_DEADLINE_S = 60.0
# Generous: a first event also waits for the group to settle; a healthy run takes seconds.
MATERIALIZE_DEADLINE_S = 60.0
# The worker web's operator views need a bearer token; every test worker gets this one.
OPERATOR_TOKEN = "test-operator-token"
OPERATOR_HEADERS = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}


def settings_env(settings: Settings) -> dict[str, str]:
    """The `TRIBUTARY_*` variables that make `Settings()` in a child process equal `settings`."""
    env = {
        "TRIBUTARY_TOPIC_PREFIX": settings.topic_prefix,
        "TRIBUTARY_LOG_LEVEL": settings.log_level,
    }
    sections: dict[str, BaseModel] = {
        "kafka": settings.kafka,
        "database": settings.database,
        "redis": settings.redis,
        "worker": settings.worker,
        "operator": settings.operator,
        "security": settings.security,
        "metrics": settings.metrics,
        "notifications": settings.notifications,
        "dispatch": settings.dispatch,
        "providers": settings.providers,
    }
    for section, values in sections.items():
        for field, value in values.model_dump().items():
            if isinstance(value, SecretStr):
                value = value.get_secret_value()
            if isinstance(value, (dict, list, tuple)):
                value = json.dumps(value)  # pydantic-settings reads complex values as JSON
            if value is not None:
                env[f"TRIBUTARY_{section.upper()}_{field.upper()}"] = str(value)
    return env


class WorkerProcess(ChildProcess):
    """`python -m agents` as a child process, its output collected in a log file."""

    name = "worker"
    start_deadline_s = START_DEADLINE_S
    stop_deadline_s = STOP_DEADLINE_S
    poll_interval_s = 0.1

    def __init__(self, settings: Settings, log_path: Path) -> None:
        self.settings = settings
        self.web_url = f"http://{settings.worker.web_host}:{settings.worker.web_port}"
        super().__init__("agents", {**os.environ, **settings_env(settings)}, log_path)

    def is_ready(self) -> bool:
        return READY_MESSAGE in self.log_path.read_text(errors="replace")


@contextmanager
def running_worker(settings: Settings, log_path: Path) -> Iterator[WorkerProcess]:
    """A ready worker for the block; it must exit cleanly (0) on SIGTERM afterwards."""
    with WorkerProcess(settings, log_path).running(must_exit_cleanly=True) as process:
        yield process


@contextmanager
def worker_recovering(
    settings: Settings, log_path: Path, table: str, key: str, value: Any
) -> Iterator[WorkerProcess]:
    """A ready worker that found `key`'s entry in `table`'s changelog when it started, as a
    deploy finds what an earlier version left (`kafka_io.write_table_entry`)."""
    _run_in_thread(write_table_entry(settings, table, key, value))
    with running_worker(settings, log_path) as process:
        yield process


async def metrics_clock(worker: WorkerProcess) -> dict[str, Any] | None:
    """The metrics aggregator's clock (watermark inputs, offsets folded, partition reports),
    from the worker's table view; None until it has one."""
    url = f"{worker.web_url}/v1/tables/metrics_clock/clock"
    headers = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}
    async with aiohttp.ClientSession() as session, session.get(url, headers=headers) as response:
        if response.status != 200:
            return None
        value: dict[str, Any] = (await response.json())["value"]
        return value


async def eventually(
    probe: Callable[[], Awaitable[T | None]],
    *,
    what: str,
    worker: ChildProcess,
    deadline_s: float = MATERIALIZE_DEADLINE_S,
    diagnose: Callable[[], Awaitable[str]] | None = None,
) -> T:
    """Poll `probe` until it returns something other than None; fail naming `what` if it never
    does, with the worker's log, since that is where the reason will be (and what `diagnose`
    finds, for what the log does not say)."""
    deadline = time.monotonic() + deadline_s
    while True:
        result = await probe()
        if result is not None:
            return result
        if worker.process.poll() is not None:
            pytest.fail(f"worker died while waiting for {what}:\n{worker.log_tail()}")
        if time.monotonic() > deadline:
            found = await diagnose() if diagnose is not None else ""
            pytest.fail(
                f"{what}: not within {deadline_s} s. {found}\nWorker log:\n{worker.log_tail()}"
            )
        await asyncio.sleep(0.1)


def make_worker_settings(stack_settings: Settings, data_dir: Path) -> Settings:
    """Fresh topics and consumer group, a free web port, in-memory tables, short batches, and a
    stall watchdog that looks every 2 s (so every test runs it, and a stall shows soon)."""
    base = isolated_settings(stack_settings)
    worker = base.worker.model_copy(
        update={
            "web_port": free_port(base.worker.web_host),
            # Not created here: the worker must create its data directory itself.
            "data_dir": str(data_dir / "not-yet-created"),
            "store": "memory://",
            "batch_window_s": 0.05,
            "stall_timeout_s": 10.0,
            "stall_check_interval_s": 2.0,
        }
    )
    operator = base.operator.model_copy(update={"token": SecretStr(OPERATOR_TOKEN)})
    return base.model_copy(update={"worker": worker, "operator": operator})


def another_worker(settings: Settings, data_dir: Path) -> Settings:
    """Another worker of the same app (one consumer group): its own web port and data."""
    worker = settings.worker.model_copy(
        update={"web_port": free_port(settings.worker.web_host), "data_dir": str(data_dir)}
    )
    return settings.model_copy(update={"worker": worker})


@contextmanager
def own_topics(settings: Settings) -> Iterator[Settings]:
    ensure_topics_blocking(settings.kafka, topic_catalog(settings).all())
    try:
        yield settings
    finally:
        delete_topics_blocking(settings.kafka, [settings.topic_prefix, settings.worker.app_id])
