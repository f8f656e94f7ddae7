"""Notices a worker that has stopped consuming, restarts its consuming, and gives up loudly.

faust-streaming has an open failure mode (issues #175 and #523): after a rebalance a worker may
keep its partitions, send fetch requests and log no error, yet hand nothing to its agents again.
A stream processor that silently stops is the worst way to fail, so the worker watches for it:

- stalled means records are waiting on partitions it owns (log end beyond the committed offset:
  records no agent has acknowledged), no agent is working on a batch (a worker blocked on
  PostgreSQL or waiting out a retry holds its batch: busy, not stalled), such a partition's
  committed offset has not moved, and no rebalance or recovery is under way (progress is
  judged per partition: one can stop while others, or a timer's ticks, keep flowing).
  Records gathered for a batch but not yet in an agent's hands do not make it busy: the batch
  would be handed over within its window. A partition whose commit is held behind a record
  never acknowledged (`streams.runtime.commit_guard`) is stalled however busy the worker is;
- after `timeout_s` stalled, it logs what the consumer is doing (`streams.runtime.consumer_state`)
and
  restarts fetching the way Faust's own recovery does (commit what was acknowledged, stop and
  reset the fetcher, resume the partitions, seek to the committed offsets, or to the beginning
  where none was committed, resume the flow): records fetched and dropped are read again;
- stalled as long again, it asks the group coordinator for a rebalance: Faust then revokes,
  reassigns, recovers and seeks everything from scratch, in this process;
- stalled as long once more, it crashes the app with `WorkerStalledError`: the worker exits
  non-zero for its supervisor to start it again.

A partition's commit unmoved with records waiting while an agent holds a batch is logged once,
with the same state, after `timeout_s`: an agent stuck inside a batch is a different failure,
but it looks the same from outside.

`StallDetector` is the decision, pure; `StallWatchdog` reads Faust's state and acts on it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from faust.types import TP

from streams.errors import RetriableError
from streams.runtime.commit_guard import commit_point
from streams.runtime.consumer_state import describe_consumer

log = logging.getLogger(__name__)

# How long asking the broker for the partitions' end offsets may take.
END_OFFSETS_TIMEOUT_S = 10.0


class WorkerStalledError(RetriableError):
    """The worker owns partitions with records waiting and has received nothing for too long."""


@dataclass(frozen=True, slots=True)
class Sample:
    at_s: float
    # Records handed to the agents so far (a counter that only grows; reported).
    received: int
    # Records on the owned partitions past their committed offsets (see `lagging_partitions`).
    waiting: int
    # Some agent is working on a batch (processing it, or waiting to retry it).
    busy: bool
    rebalancing: bool
    # Records handed to the agents and not acknowledged (reported, for a stall that goes unseen).
    unacked: int = 0
    # Owned partitions whose commit waits behind a record never acknowledged
    # (`streams.runtime.commit_guard`): stuck however busy the rest of the worker is.
    held: int = 0
    # Partitions with records waiting -> their committed offset (or log start): progress is
    # judged per partition, since one partition can stop while the others (or a timer's ticks)
    # keep the worker receiving.
    lagging: Mapping[TP, int] = field(default_factory=dict)


class StallDetector:
    """How long the worker has been stalled, from samples taken now and then: the longest any
    partition with records waiting has kept its committed offset.

    `busy_counts`: whether an agent working on a batch excuses it (the watchdog's decision,
    except for held commits) or not (its one-time report of an agent stuck inside a batch).
    """

    def __init__(self, *, busy_counts: bool = True) -> None:
        self._busy_counts = busy_counts
        # partition -> (committed offset, since when it has not moved)
        self._unmoved: dict[TP, tuple[int, float]] = {}

    def observe(self, sample: Sample) -> float | None:
        now = sample.at_s
        unmoved = {}
        for tp, committed in sample.lagging.items():
            last = self._unmoved.get(tp)
            same = last is not None and last[0] == committed
            unmoved[tp] = (committed, last[1] if last is not None and same else now)
        self._unmoved = unmoved
        busy = sample.busy and self._busy_counts and not sample.held
        if sample.rebalancing or busy:
            self.restart(now)
            return None
        oldest = min((since for _, since in unmoved.values()), default=now)
        return None if oldest == now else now - oldest

    def restart(self, at_s: float) -> None:
        """Count the stall again from `at_s` (after an attempt to end it, or an excuse)."""
        self._unmoved = {tp: (committed, at_s) for tp, (committed, _) in self._unmoved.items()}


def lagging_partitions(
    end_offsets: Mapping[TP, int],
    committed: Mapping[TP, int | None],
    log_starts: Mapping[TP, int],
) -> dict[TP, int]:
    """The partitions with records past their committed offset (the next to read), or past
    their log start where the group never committed -> that offset.

    Committed, not what Faust last read: Faust advances its read offset for records it fetched
    and then dropped (a flow suspended mid-delivery), so records can be "read" that no agent
    ever saw; a committed offset moves only past records an agent acknowledged.
    """
    lagging = {}
    for tp, end in end_offsets.items():
        start = committed.get(tp)
        if start is None:
            start = log_starts.get(tp, 0)
        if end > start:
            lagging[tp] = start
    return lagging


def waiting_records(end_offsets: Mapping[TP, int], lagging: Mapping[TP, int]) -> int:
    """Records past the offsets `lagging_partitions` found."""
    return sum(end_offsets[tp] - start for tp, start in lagging.items())


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
        self._quiet = StallDetector(busy_counts=False)
        self._quiet_reported = False
        self._attempts = 0
        self._ends: Mapping[TP, int] = {}
        self.restarts = 0
        self.last_sample: Sample | None = None
        # How long it was stalled at the last check (None: it was not), for `/health/ready`.
        self.stalled_s: float | None = None

    async def check(self) -> None:
        sample = self.last_sample = await self._sample()
        self._report_quiet_while_busy(sample)
        stalled_s = self.stalled_s = self._detector.observe(sample)
        if stalled_s is None:
            self._attempts = 0
            return
        if stalled_s < self._timeout_s:
            return
        what = (
            f"{sample.held} partitions' commits held behind a record never acknowledged"
            if sample.held
            else f"{sample.waiting} records waiting, a partition's commit unmoved"
        ) + f" for {stalled_s:.0f} s"
        steps = (
            ("restarting its fetching as Faust's recovery does", self._restart_fetching),
            ("asking its group for a rebalance", self._rejoin_group),
        )
        if self._attempts < len(steps):
            action, step = steps[self._attempts]
            log.error("worker stalled: %s; %s. Consumer state:\n%s", what, action, self._describe())
            try:
                await step()
            except Exception:  # the next step (or the crash) follows after another timeout
                log.exception("stall watchdog: %s failed", action)
            self._attempts += 1
            self.restarts += 1
            self._on_restart()
            self._detector.restart(self._clock())
            return
        error = WorkerStalledError(
            f"{what}, after restarting its fetching and its group membership"
        )
        log.critical("worker stalled for good, crashing for a restart: %s", error)
        await self._app.crash(error)

    def _report_quiet_while_busy(self, sample: Sample) -> None:
        quiet_s = self._quiet.observe(sample)
        if quiet_s is None:
            self._quiet_reported = False
        elif quiet_s >= self._timeout_s and sample.busy and not self._quiet_reported:
            self._quiet_reported = True
            log.warning(
                "%d records waiting, a partition's commit unmoved for %.0f s while an agent holds"
                " a batch. Consumer state:\n%s",
                sample.waiting,
                quiet_s,
                self._describe(),
            )

    def _describe(self) -> str:
        app = self._app
        return describe_consumer(app, self._sources(), self._ends, app.batches_in_flight)

    async def describe(self) -> str:
        """The consumer's state now, for an operator asking (the end offsets asked afresh)."""
        sources = self._sources()
        self._ends = await asyncio.wait_for(
            self._app.consumer.highwaters(*sources), timeout=END_OFFSETS_TIMEOUT_S
        )
        return self._describe()

    def _sources(self) -> list[TP]:
        """The partitions the worker owns, as its consumer or Faust's assignor sees them: a
        consumer that lost its assignment while the group still counts on it fetches nothing
        from partitions nobody else reads."""
        changelogs = set(self._changelogs())
        owned = set(self._app.consumer.assignment()) | set(self._app.assignor.assigned_actives())
        return sorted(tp for tp in owned if tp.topic not in changelogs)

    async def _sample(self) -> Sample:
        app = self._app
        now = self._clock()
        rebalancing = bool(app.rebalancing or app.in_recovery)
        consumer = app.consumer
        received = int(app.monitor.messages_received_total)
        unacked = len(consumer._unacked_messages)
        busy = app.batches_in_flight > 0
        sources = [] if rebalancing else self._sources()
        waiting = 0
        lagging: dict[TP, int] = {}
        self._ends = {}
        if sources:
            # Offsets the log was seen to skip (a transaction's marker at its end) wait for no one.
            absent = app.fetch_positions.absent
            committed = {
                tp: None if offset is None else commit_point(offset, (), absent(tp))
                for tp, offset in consumer._committed_offset.items()
            }
            try:
                self._ends = await asyncio.wait_for(
                    consumer.highwaters(*sources), timeout=END_OFFSETS_TIMEOUT_S
                )
                never_committed = [tp for tp in sources if committed.get(tp) is None]
                starts = (
                    await asyncio.wait_for(
                        consumer.earliest_offsets(*never_committed), timeout=END_OFFSETS_TIMEOUT_S
                    )
                    if never_committed
                    else {}
                )
            except Exception as exc:  # noqa: BLE001 - no answer is no evidence of a stall
                log.warning("stall check: offsets unavailable: %r", exc)
                self._ends, starts = {}, {}
            lagging = lagging_partitions(self._ends, committed, starts)
            waiting = waiting_records(self._ends, lagging)
        owned = set(sources)
        held = len([tp for tp in app.held_commits.held_for(0) if tp in owned])
        return Sample(now, received, waiting, busy, rebalancing, unacked, held, lagging)

    async def _restart_fetching(self) -> None:
        app = self._app
        consumer = app.consumer
        await consumer.commit()
        await app._fetcher.stop()
        app._fetcher.service_reset()
        sources = self._sources()
        consumer.resume_partitions(set(sources))
        # To the committed offsets, or to the beginning where none was
        # (`streams.runtime.fetch_positions`).
        await consumer.perform_seek()
        app.held_commits.clear()  # whatever held them is read again from the committed offsets
        app.flow_control.resume()
        consumer.resume_flow()
        await app._fetcher.maybe_start()

    async def _rejoin_group(self) -> None:
        # aiokafka's coordinator runs on this loop (`streams.runtime.loop_consumer`).
        self._app.consumer._thread._consumer._coordinator.request_rejoin()
