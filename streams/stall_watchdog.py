"""Notices a worker that has stopped consuming, restarts its fetching, and gives up loudly.

faust-streaming has an open failure mode (issues #175 and #523): after a rebalance a worker may
keep its partitions, send fetch requests and log no error, yet hand nothing to its agents again.
A stream processor that silently stops is the worst way to fail, so the worker watches for it:

- stalled means records are waiting on partitions it owns (log end beyond what was handed to the
  agents), no agent holds an unacknowledged record (so nothing is busy with them, or waiting to
  retry), nothing has been received since the last look, and no rebalance or recovery is under
  way. A worker blocked on PostgreSQL holds its batch unacknowledged, so it is busy, not stalled;
- after `timeout_s` stalled, it commits what was acknowledged and restarts fetching the way
  Faust's own recovery does (stop and reset the fetcher, resume the partitions, seek to the
  committed offsets, resume the flow);
- stalled for `timeout_s` more after that, it crashes the app with `WorkerStalledError`: the
  worker exits non-zero for its supervisor to start it again, and the group rebalances.

`StallDetector` is the decision, pure; `StallWatchdog` reads Faust's state and acts on it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from faust.types import TP

from streams.errors import RetriableError

log = logging.getLogger(__name__)

# How long asking the broker for the partitions' end offsets may take.
END_OFFSETS_TIMEOUT_S = 10.0


class WorkerStalledError(RetriableError):
    """The worker owns partitions with records waiting and has received nothing for too long."""


@dataclass(frozen=True, slots=True)
class Sample:
    at_s: float
    # Records handed to the agents so far (a counter that only grows).
    received: int
    # Records on the owned partitions beyond what was handed to the agents.
    waiting: int
    # Some agent holds a record it has not acknowledged (processing it, or a retry's wait).
    busy: bool
    rebalancing: bool
    # How many such records (what `busy` is made of; reported, for when a stall goes unseen).
    unacked: int = 0


class StallDetector:
    """How long the worker has been stalled, from samples taken now and then."""

    def __init__(self) -> None:
        self._since_s: float | None = None
        self._received: int | None = None

    def observe(self, sample: Sample) -> float | None:
        moving = sample.received != self._received
        self._received = sample.received
        if moving or sample.busy or sample.rebalancing or sample.waiting <= 0:
            self._since_s = None
        elif self._since_s is None:
            self._since_s = sample.at_s
        return None if self._since_s is None else sample.at_s - self._since_s

    def restart(self, at_s: float) -> None:
        """Count the stall again from `at_s` (after an attempt to end it)."""
        if self._since_s is not None:
            self._since_s = at_s


def waiting_records(
    end_offsets: Mapping[TP, int],
    read_offsets: Mapping[TP, int | None],
    committed: Mapping[TP, int | None],
) -> int:
    """Records past what each partition handed over: its last read offset or, before any
    read, its committed offset (the next to read)."""
    waiting = 0
    for tp, end in end_offsets.items():
        read = read_offsets.get(tp)
        next_offset = read + 1 if read is not None else committed.get(tp) or 0
        waiting += max(0, end - next_offset)
    return waiting


class StallWatchdog:
    """Samples a Faust app (`check`, run by a timer) and acts as the module docstring says."""

    def __init__(
        self,
        app: Any,
        *,
        timeout_s: float,
        changelog_topics: Callable[[], Iterable[str]],
        on_restart: Callable[[], None] = lambda: None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._app = app
        self._timeout_s = timeout_s
        self._changelogs = changelog_topics
        self._clock = clock
        self._on_restart = on_restart
        self._detector = StallDetector()
        self._restarted = False
        self.restarts = 0
        self.last_sample: Sample | None = None

    async def check(self) -> None:
        sample = self.last_sample = await self._sample()
        stalled_s = self._detector.observe(sample)
        if stalled_s is None:
            self._restarted = False
            return
        if stalled_s < self._timeout_s:
            return
        if not self._restarted:
            log.error(
                "worker stalled: %d records waiting on its partitions, none received for %.0f s;"
                " restarting the fetcher",
                sample.waiting,
                stalled_s,
            )
            await self._restart_fetching()
            self._restarted = True
            self.restarts += 1
            self._on_restart()
            self._detector.restart(self._clock())
            return
        error = WorkerStalledError(
            f"{sample.waiting} records waiting, none received for {stalled_s:.0f} s"
            " after restarting the fetcher"
        )
        log.critical("worker stalled for good, crashing for a restart: %s", error)
        await self._app.crash(error)

    def _sources(self) -> list[TP]:
        changelogs = set(self._changelogs())
        return [tp for tp in self._app.consumer.assignment() if tp.topic not in changelogs]

    async def _sample(self) -> Sample:
        app = self._app
        now = self._clock()
        rebalancing = bool(app.rebalancing or app.in_recovery)
        consumer = app.consumer
        received = int(app.monitor.messages_received_total)
        unacked = len(consumer._unacked_messages)
        sources = [] if rebalancing else self._sources()
        waiting = 0
        if sources:
            try:
                ends = await asyncio.wait_for(
                    consumer.highwaters(*sources), timeout=END_OFFSETS_TIMEOUT_S
                )
            except Exception as exc:  # noqa: BLE001 - no answer is no evidence of a stall
                log.warning("stall check: end offsets unavailable: %r", exc)
                ends = {}
            waiting = waiting_records(ends, consumer._read_offset, consumer._committed_offset)
        return Sample(now, received, waiting, unacked > 0, rebalancing, unacked)

    async def _restart_fetching(self) -> None:
        """What Faust's recovery does to start consuming after a rebalance, again."""
        app = self._app
        consumer = app.consumer
        await consumer.commit()
        await app._fetcher.stop()
        app._fetcher.service_reset()
        consumer.resume_partitions(set(self._sources()))
        await consumer.perform_seek()
        app.flow_control.resume()
        consumer.resume_flow()
        await app._fetcher.maybe_start()
