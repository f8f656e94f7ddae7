"""The stall watchdog: when a worker counts as stalled, and what it does then, with a fake app."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
from faust.types import TP

from streams.runtime.commit_guard import HeldCommits
from streams.runtime.fetch_positions import FetchPositions
from streams.runtime.stall_watchdog import (
    Sample,
    StallDetector,
    StallWatchdog,
    WorkerStalledError,
    lagging_partitions,
    waiting_records,
)

ORDERS = [TP("orders.events", 0), TP("orders.events", 1)]
CHANGELOG = TP("app-orders-changelog", 0)


def sample(at_s: float, waiting: int = 5, committed: int = 3, **kw: Any) -> Sample:
    lagging = {ORDERS[0]: committed} if waiting > 0 else {}
    busy, rebalancing, held = kw.get("busy", False), kw.get("rebalancing", False), kw.get("held", 0)
    return Sample(at_s, 10, waiting, busy, rebalancing, held=held, lagging=lagging)


def test_a_partition_with_records_waiting_whose_commit_does_not_move_is_a_stall() -> None:
    detector = StallDetector()
    assert detector.observe(sample(0)) is None  # the first look: unmoved since now
    assert detector.observe(sample(5)) == 5
    assert detector.observe(sample(12)) == 12


def test_progress_is_judged_per_partition() -> None:
    detector = StallDetector()
    for at_s, moving in ((0, 10), (5, 20), (12, 30)):
        lagging = {ORDERS[0]: 3, ORDERS[1]: moving}  # the second one flows, the first does not
        assert detector.observe(Sample(at_s, at_s, 9, False, False, lagging=lagging)) in (
            None,
            at_s,
        )
    assert detector.observe(Sample(12, 12, 9, False, False, lagging={ORDERS[0]: 3})) == 12


@pytest.mark.parametrize(
    "healthy",
    [
        sample(12, committed=4),  # its commit moved
        sample(12, waiting=0),  # nothing to receive
        sample(12, busy=True),  # an agent is on it (a slow database, a retry's wait)
        sample(12, rebalancing=True),
    ],
)
def test_anything_else_is_no_stall_and_starts_the_count_again(healthy: Sample) -> None:
    detector = StallDetector()
    detector.observe(sample(0))
    detector.observe(sample(5))
    assert detector.observe(healthy) is None
    again = detector.observe(sample(20, committed=4))
    assert again is None or again <= 8  # counted again from the healthy look at most


def test_waiting_records_count_from_the_committed_offset_else_the_log_start() -> None:
    ends = {ORDERS[0]: 100, ORDERS[1]: 50}
    assert waiting_records(ends, lagging_partitions(ends, {ORDERS[0]: 99, ORDERS[1]: 40}, {})) == 11
    # Never committed: from the log start (records deleted by retention are not waiting).
    assert waiting_records(ends, lagging_partitions(ends, {ORDERS[0]: 100}, {ORDERS[1]: 50})) == 0
    assert waiting_records(ends, lagging_partitions(ends, {ORDERS[0]: 120}, {})) == 50


@dataclass
class FakeConsumer:
    calls: list[str]
    ends: dict[TP, int]
    _committed_offset: dict[TP, int | None] = field(default_factory=dict)
    _unacked_messages: set[object] = field(default_factory=set)

    assigned: set[TP] = field(default_factory=lambda: {*ORDERS, CHANGELOG})

    def assignment(self) -> set[TP]:
        return self.assigned

    async def highwaters(self, *tps: TP) -> dict[TP, int]:
        assert CHANGELOG not in tps, "changelogs are read on purpose only during recovery"
        return {tp: self.ends[tp] for tp in tps}

    async def earliest_offsets(self, *tps: TP) -> dict[TP, int]:
        return dict.fromkeys(tps, 0)

    async def commit(self) -> None:
        self.calls.append("commit")

    def resume_partitions(self, tps: set[TP]) -> None:
        self.calls.append(f"resume {len(tps)} partitions")

    async def perform_seek(self) -> None:
        self.calls.append("seek to committed")

    def resume_flow(self) -> None:
        self.calls.append("resume consumer flow")


class FakeFetcher:
    def __init__(self, calls: list[str]) -> None:
        self.calls = calls

    async def stop(self) -> None:
        self.calls.append("stop fetcher")

    def service_reset(self) -> None:
        self.calls.append("reset fetcher")

    async def maybe_start(self) -> None:
        self.calls.append("start fetcher")


class FakeFlowControl:
    def __init__(self, calls: list[str]) -> None:
        self.calls = calls

    def resume(self) -> None:
        self.calls.append("resume app flow")


class FakeCoordinator:
    def __init__(self, calls: list[str]) -> None:
        self.calls = calls

    def request_rejoin(self) -> None:
        self.calls.append("rejoin group")


class FakeConsumerThread:
    def __init__(self, calls: list[str]) -> None:
        self._consumer = type("Kafka", (), {"_coordinator": FakeCoordinator(calls)})()


class FakeAssignor:
    def __init__(self) -> None:
        self.actives = {ORDERS[1], CHANGELOG}

    def assigned_actives(self) -> set[TP]:
        return self.actives


class FakeApp:
    def __init__(self) -> None:
        self.calls: list[str] = []
        self.assignor = FakeAssignor()
        self.batches_in_flight = 0
        self.held_commits = HeldCommits(clock=lambda: 0.0)
        self.fetch_positions = FetchPositions()
        self.rebalancing = False
        self.in_recovery = False
        self.monitor = type("Monitor", (), {"messages_received_total": 10})()
        self.consumer = FakeConsumer(self.calls, ends={ORDERS[0]: 30, ORDERS[1]: 0})
        self.consumer._thread = FakeConsumerThread(self.calls)  # type: ignore[attr-defined]
        self._fetcher = FakeFetcher(self.calls)
        self.flow_control = FakeFlowControl(self.calls)
        self.crashed: BaseException | None = None

    async def crash(self, reason: BaseException) -> None:
        self.crashed = reason


class Clock:
    def __init__(self) -> None:
        self.now_s = 0.0

    def __call__(self) -> float:
        return self.now_s


async def run(watchdog: StallWatchdog, clock: Clock, until_s: float, step_s: float = 5) -> None:
    while clock.now_s < until_s:
        clock.now_s += step_s
        await watchdog.check()


def watchdog_for(app: FakeApp, clock: Clock) -> StallWatchdog:
    return StallWatchdog(
        app,
        timeout_s=30,
        changelog_topics=lambda: [CHANGELOG.topic],
        on_restart=lambda: app.calls.append("counted"),
        clock=clock,
    )


RESTART_FETCHING = [
    "commit",
    "stop fetcher",
    "reset fetcher",
    "resume 2 partitions",
    "seek to committed",
    "resume app flow",
    "resume consumer flow",
    "start fetcher",
    "counted",
]


async def test_a_stall_restarts_fetching_then_rejoins_the_group_then_crashes_if_it_lasts(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app, clock = FakeApp(), Clock()
    watchdog = watchdog_for(app, clock)
    await run(watchdog, clock, until_s=30)
    assert app.calls == []  # the first look at 5 s, then 25 s stalled: not yet
    await run(watchdog, clock, until_s=35)
    assert app.calls == RESTART_FETCHING
    assert (watchdog.restarts, app.crashed) == (1, None)
    assert "orders.events[0] end=30" in caplog.text  # the consumer's state, logged
    await run(watchdog, clock, until_s=60)
    assert app.calls == RESTART_FETCHING
    await run(watchdog, clock, until_s=65)
    assert app.calls == [*RESTART_FETCHING, "rejoin group", "counted"]
    assert (watchdog.restarts, app.crashed) == (2, None)
    await run(watchdog, clock, until_s=95)
    assert isinstance(app.crashed, WorkerStalledError)
    assert "30 records waiting" in str(app.crashed)


async def test_a_restart_that_works_is_forgotten() -> None:
    app, clock = FakeApp(), Clock()
    watchdog = watchdog_for(app, clock)
    await run(watchdog, clock, until_s=40)
    assert watchdog.restarts == 1
    app.monitor.messages_received_total += 30  # type: ignore[attr-defined]
    app.consumer._committed_offset = {ORDERS[0]: 30}
    await run(watchdog, clock, until_s=160)  # idle, nothing waiting: healthy
    assert (watchdog.restarts, app.crashed) == (1, None)
    app.consumer.ends[ORDERS[0]] = 60  # stalled again later: the first step again
    await run(watchdog, clock, until_s=200)
    assert app.calls == [*RESTART_FETCHING, *RESTART_FETCHING]


async def test_an_agent_working_on_a_batch_or_a_rebalance_is_left_alone(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app, clock = FakeApp(), Clock()
    watchdog = watchdog_for(app, clock)
    app.batches_in_flight = 1  # a batch stuck on PostgreSQL
    await run(watchdog, clock, until_s=120)
    assert caplog.text.count("while an agent holds a batch") == 1  # reported, once
    app.batches_in_flight = 0
    app.rebalancing = True
    await run(watchdog, clock, until_s=240)
    assert (app.calls, app.crashed) == ([], None)


async def test_records_gathered_for_a_batch_but_in_no_agent_hands_do_not_make_it_busy() -> None:
    app, clock = FakeApp(), Clock()
    watchdog = watchdog_for(app, clock)
    app.consumer._unacked_messages.add(object())
    await run(watchdog, clock, until_s=40)
    assert app.calls == RESTART_FETCHING
    assert watchdog.last_sample is not None
    assert watchdog.last_sample.unacked == 1


async def test_a_consumer_that_lost_its_assignment_while_the_group_counts_on_it_is_stalled() -> (
    None
):
    app, clock = FakeApp(), Clock()
    app.consumer.assigned = set()  # aiokafka's view; Faust's assignor still gives it both
    app.assignor.actives = {*ORDERS, CHANGELOG}
    watchdog = watchdog_for(app, clock)
    await run(watchdog, clock, until_s=40)
    assert app.calls[:2] == ["commit", "stop fetcher"]
    assert watchdog.last_sample is not None
    assert watchdog.last_sample.waiting == 30


async def test_a_step_that_fails_is_logged_and_the_next_one_follows() -> None:
    app, clock = FakeApp(), Clock()

    async def no_assignment() -> None:
        raise AssertionError("No partitions are currently assigned")  # aiokafka's seek

    app.consumer.perform_seek = no_assignment  # type: ignore[method-assign]
    watchdog = watchdog_for(app, clock)
    await run(watchdog, clock, until_s=70)
    assert app.calls[-2:] == ["rejoin group", "counted"]
    assert (watchdog.restarts, app.crashed) == (2, None)


async def test_a_commit_held_behind_an_unacknowledged_record_is_a_stall_however_busy() -> None:
    app, clock = FakeApp(), Clock()
    app.consumer.ends = {ORDERS[0]: 30, ORDERS[1]: 12}
    app.consumer._committed_offset = {ORDERS[0]: 30, ORDERS[1]: 9}
    app.held_commits.hold(ORDERS[1])  # offset 9 never acknowledged, 10 and 11 were
    app.batches_in_flight = 1  # the agents are busy with other partitions
    watchdog = watchdog_for(app, clock)
    for _ in range(8):
        clock.now_s += 5
        app.monitor.messages_received_total += 7  # type: ignore[attr-defined]  # records flow
        await watchdog.check()
    assert app.calls == RESTART_FETCHING
    assert app.held_commits.held_for(0) == []  # read again from offset 9


async def test_a_transactions_marker_at_the_end_of_the_log_is_not_a_record_waiting() -> None:
    app, clock = FakeApp(), Clock()
    app.consumer.ends = {ORDERS[0]: 31, ORDERS[1]: 0}
    app.consumer._committed_offset = {ORDERS[0]: 30}
    positions = app.fetch_positions
    positions.seek_started([ORDERS[0]])
    positions.seek_ended([ORDERS[0]], {ORDERS[0]: 30})
    positions.admit({}, positions.fetch_started(), fetched_to={ORDERS[0]: 31})  # passed it
    watchdog = watchdog_for(app, clock)
    await run(watchdog, clock, until_s=120)
    assert (app.calls, app.crashed) == ([], None)
    assert watchdog.last_sample is not None
    assert watchdog.last_sample.waiting == 0
