"""A worker that has not finished stopping by its deadline says where it waits, and exits.

A graceful stop commits, writes what the tables hold and leaves the group, each step a wait on
Kafka. A step that never returns (the commit faust-streaming retried forever against a
coordinator it had closed inside a rebalance, before `TributaryApp._on_rebalance_when_stopped`)
held the worker in `Stopping...` until something killed it, with nothing in its log to say why.

`StopDeadline`, started when the stop begins, gives the whole stop `worker.stop_timeout_s`. Past
it, a timer thread asks the loop to log every task's await chain (`consumer_state`); a loop too
blocked to answer within `DESCRIBE_WAIT_S` gets every thread's stack logged instead. Then the
process ends with `STOP_TIMEOUT_EXIT_CODE`. Exiting there loses nothing acknowledged: a batch
whose changes are not in their changelogs is not committed, and the partitions' next owner reads
it again, as after any crash.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
import threading
import traceback
from collections.abc import Callable
from typing import Any

import faust

from streams.runtime.consumer_state import describe_tasks

log = logging.getLogger(__name__)

# EX_SOFTWARE: the stop did not complete; distinct from a crash's exit status.
STOP_TIMEOUT_EXIT_CODE = 70
DESCRIBE_WAIT_S = 2.0


class StopDeadline:
    """Ends the process `timeout_s` after `start` unless it has ended by itself."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        timeout_s: float,
        *,
        exit_process: Callable[[int], Any] = os._exit,
        describe_wait_s: float = DESCRIBE_WAIT_S,
    ) -> None:
        self._loop = loop
        self._timeout_s = timeout_s
        self._exit_process = exit_process
        self._describe_wait_s = describe_wait_s
        self._timer: threading.Timer | None = None

    def start(self) -> None:
        """Start the clock; later calls (a second signal, the stop after a crash) keep it."""
        if self._timer is None:
            self._timer = threading.Timer(self._timeout_s, self._expired)
            self._timer.daemon = True  # never keeps a process that stopped in time alive
            self._timer.start()

    def _expired(self) -> None:
        described = threading.Event()

        def describe() -> None:
            log.error(
                "worker did not stop within %s s (worker.stop_timeout_s); its tasks:\n%s",
                self._timeout_s,
                describe_tasks(),
            )
            described.set()

        # A closed loop has nothing left to describe: its threads' stacks say the rest.
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(describe)
        if not described.wait(self._describe_wait_s):
            log.error(
                "worker did not stop within %s s and its event loop does not answer; "
                "every thread's stack:\n%s",
                self._timeout_s,
                _thread_stacks(),
            )
        self._exit_process(STOP_TIMEOUT_EXIT_CODE)


def _thread_stacks() -> str:
    names = {thread.ident: thread.name for thread in threading.enumerate()}
    return "\n".join(
        f"thread {names.get(ident, ident)}:\n{''.join(traceback.format_stack(frame))}"
        for ident, frame in sys._current_frames().items()
    )


class DeadlineWorker(faust.Worker):
    """A Faust worker whose stop, however it was asked for, ends within `stop_timeout_s`."""

    def __init__(self, *args: Any, stop_timeout_s: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.stop_deadline = StopDeadline(self.loop, stop_timeout_s)

    async def stop(self) -> None:
        self.stop_deadline.start()
        await super().stop()
