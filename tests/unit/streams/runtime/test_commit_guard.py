"""Commits never pass a record that was neither acknowledged nor seen absent from the log."""

from __future__ import annotations

from typing import Any

from faust.types import TP

from streams.runtime.app import TributaryApp, create_faust_app
from streams.runtime.commit_guard import HeldCommits, commit_point
from streams.settings import WorkerProcessSettings

ORDERS = TP("orders.events", 0)


def test_the_commit_point_moves_past_acknowledged_and_absent_offsets_only() -> None:
    assert commit_point(30, [30, 31, 33], absent=[]) == 32
    assert commit_point(30, [31, 32], absent=[]) == 30  # 30 was never acknowledged
    assert commit_point(30, [31, 32], absent=[(30, 31)]) == 33  # 30 is a transaction marker
    assert commit_point(30, [30, 34], absent=[(31, 34)]) == 35
    assert commit_point(30, [], absent=[(20, 25)]) == 30


def app_with(committed: int | None, acked: list[int]) -> tuple[TributaryApp, Any]:
    app = create_faust_app(WorkerProcessSettings.model_validate({"worker": {"store": "memory://"}}))
    consumer: Any = app.consumer
    consumer._committed_offset[ORDERS] = committed
    consumer._acked[ORDERS] = list(acked)
    consumer._acked_index[ORDERS] = set(acked)
    return app, consumer


def test_fausts_own_choice_passes_the_missing_record_and_the_apps_does_not() -> None:
    app, consumer = app_with(committed=30, acked=[31, 32])
    assert type(consumer)._new_offset(consumer, ORDERS) == 33  # faust-streaming's off-by-one
    app, consumer = app_with(committed=30, acked=[31, 32])
    assert consumer._new_offset(ORDERS) is None
    assert app.held_commits.held_for(0) == [ORDERS]


def test_the_apps_consumer_commits_over_offsets_fetching_saw_absent() -> None:
    app, consumer = app_with(committed=30, acked=[31, 32])
    positions = app.fetch_positions
    positions.seek_started([ORDERS])
    positions.seek_ended([ORDERS], {ORDERS: 30})
    positions.admit({ORDERS: [Record(31), Record(32)]}, positions.fetch_started())
    assert consumer._new_offset(ORDERS) == 33
    assert consumer._acked[ORDERS] == []
    assert consumer._acked_index[ORDERS] == set()
    assert app.held_commits.held_for(0) == []


def test_before_a_first_commit_the_partition_starts_where_the_seek_put_it() -> None:
    app, consumer = app_with(committed=None, acked=[1, 2])
    app.fetch_positions.seek_started([ORDERS])
    app.fetch_positions.seek_ended([ORDERS], {ORDERS: 0})
    assert consumer._new_offset(ORDERS) is None  # offset 0 was never acknowledged
    consumer._acked[ORDERS].append(0)
    consumer._acked_index[ORDERS].add(0)
    assert consumer._new_offset(ORDERS) == 3


def test_a_partition_is_held_from_when_its_commit_first_could_not_move() -> None:
    now = [100.0]
    held = HeldCommits(clock=lambda: now[0])
    held.hold(ORDERS)
    now[0] = 107.0
    held.hold(ORDERS)
    assert held.held_for(7.0) == [ORDERS]
    held.release(ORDERS)
    assert held.held_for(0.0) == []


def test_a_held_partition_is_released_once_its_missing_record_is_acknowledged() -> None:
    app, consumer = app_with(committed=30, acked=[31, 32])
    held = app.held_commits
    assert consumer._new_offset(ORDERS) is None
    assert held.held_for(0) == [ORDERS]
    consumer._acked[ORDERS].append(30)
    consumer._acked_index[ORDERS].add(30)
    assert consumer._new_offset(ORDERS) == 33
    assert held.held_for(0) == []


class Record:
    def __init__(self, offset: int) -> None:
        self.offset = offset


def test_a_transactions_marker_at_the_end_of_the_log_is_committed_past() -> None:
    app, consumer = app_with(committed=7, acked=[])
    positions = app.fetch_positions
    positions.seek_started([ORDERS])
    positions.seek_ended([ORDERS], {ORDERS: 7})
    positions.admit({}, positions.fetch_started(), fetched_to={ORDERS: 8})
    assert consumer._new_offset(ORDERS) == 8
    assert app.held_commits.held_for(0) == []
