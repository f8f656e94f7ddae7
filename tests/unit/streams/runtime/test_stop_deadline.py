"""A stop past its deadline: where each task waits is logged (or, the loop not answering, every
thread's stack), then the process exits with its own status. The exit is passed in: these
tests record it instead of ending pytest."""

from __future__ import annotations

import asyncio
import logging

import pytest
from pydantic import ValidationError

from streams.runtime.stop_deadline import STOP_TIMEOUT_EXIT_CODE, StopDeadline
from streams.settings import WorkerProcessSettings

# Only a guard against a hang: the deadlines below are far shorter.
GUARD_S = 10.0
DEADLINE_S = 0.05


class Exits:
    """The process's exit as the timer thread calls it, awaitable from the loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.codes: list[int] = []
        self.exited = asyncio.Event()

    def __call__(self, code: int) -> None:
        self.codes.append(code)
        self.loop.call_soon_threadsafe(self.exited.set)

    async def wait(self) -> None:
        async with asyncio.timeout(GUARD_S):
            await self.exited.wait()


async def test_a_stop_past_its_deadline_logs_where_each_task_waits_then_exits(
    caplog: pytest.LogCaptureFixture,
) -> None:
    loop = asyncio.get_running_loop()
    exits = Exits(loop)
    coordinator_gone = asyncio.Event()

    async def commit_offsets() -> None:
        await coordinator_gone.wait()

    hung = asyncio.create_task(commit_offsets(), name="last-commit")
    with caplog.at_level(logging.ERROR, logger="streams.runtime.stop_deadline"):
        StopDeadline(loop, DEADLINE_S, exit_process=exits).start()
        await exits.wait()
    hung.cancel()
    assert exits.codes == [STOP_TIMEOUT_EXIT_CODE]
    assert "did not stop within 0.05 s" in caplog.text
    assert "task last-commit: commit_offsets@" in caplog.text


async def test_a_loop_that_does_not_answer_gets_every_threads_stack_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    exits = Exits(asyncio.get_running_loop())
    blocked = asyncio.new_event_loop()  # never run: what a loop stuck in a call looks like
    try:
        with caplog.at_level(logging.ERROR, logger="streams.runtime.stop_deadline"):
            StopDeadline(blocked, DEADLINE_S, exit_process=exits, describe_wait_s=0.05).start()
            await exits.wait()
    finally:
        blocked.close()
    assert exits.codes == [STOP_TIMEOUT_EXIT_CODE]
    assert "its event loop does not answer" in caplog.text
    assert "thread MainThread:" in caplog.text
    assert "in run_forever" in caplog.text  # where the main thread was: this test's loop


def test_the_stop_timeout_outlasts_the_flush_a_stop_may_wait_for() -> None:
    with pytest.raises(ValidationError, match="stop_timeout_s"):
        WorkerProcessSettings.model_validate(
            {"worker": {"send_timeout_s": 30, "stop_timeout_s": 30}}
        )
    worker = WorkerProcessSettings.model_validate(
        {"worker": {"send_timeout_s": 5, "stop_timeout_s": 10}}
    ).worker
    assert worker.stop_timeout_s == 10
