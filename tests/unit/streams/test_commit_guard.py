"""Commits never pass a record no agent acknowledged (Faust's own check is off by one)."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from faust.types import TP

from streams.commit_guard import HeldCommits, guard_commits, next_offset_missing
from streams.faust_app import create_faust_app
from streams.settings import Settings

ORDERS = TP("orders.events", 0)


class FakeConsumer:
    """Faust's bookkeeping, and its choice of offset: past the first consecutive run."""

    def __init__(self, committed: int | None, acked: list[int]) -> None:
        self._committed_offset: dict[TP, int | None] = {ORDERS: committed}
        self._acked: dict[TP, list[int]] = defaultdict(list, {ORDERS: acked})
        self._gap: dict[TP, Any] = defaultdict(list)

    def _new_offset(self, tp: TP) -> int | None:
        acked = sorted(self._acked[tp])
        if not acked:
            return None
        run = [acked[0]]
        for offset in acked[1:]:
            if offset != run[-1] + 1:
                break
            run.append(offset)
        return run[-1] + 1


def test_the_next_record_unacknowledged_holds_the_commit() -> None:
    # Faust's check lets exactly this through: min(acked) - committed == 1.
    assert next_offset_missing(FakeConsumer(committed=30, acked=[31, 32]), ORDERS)
    assert not next_offset_missing(FakeConsumer(committed=30, acked=[30, 31]), ORDERS)
    assert not next_offset_missing(FakeConsumer(committed=30, acked=[]), ORDERS)
    # Before a first commit nothing says where the partition starts.
    assert not next_offset_missing(FakeConsumer(committed=None, acked=[5, 6]), ORDERS)


def test_a_guarded_consumer_commits_up_to_its_first_unacknowledged_record_only() -> None:
    now = [100.0]
    held = HeldCommits(clock=lambda: now[0])
    consumer = FakeConsumer(committed=30, acked=[31, 32])
    guard_commits(consumer, held)
    assert consumer._new_offset(ORDERS) is None  # not 33: offset 30 was never acknowledged
    now[0] = 107.0
    assert consumer._new_offset(ORDERS) is None
    assert held.held_for(5.0) == [ORDERS]  # held since 100, not since 107

    consumer._acked[ORDERS] = [30, 31, 32]  # read again and acknowledged
    assert consumer._new_offset(ORDERS) == 33
    assert held.held_for(0.0) == []


def test_fausts_own_consumer_passes_the_missing_record_and_the_apps_does_not() -> None:
    app = create_faust_app(Settings.model_validate({"worker": {"store": "memory://"}}))
    consumer: Any = app.consumer

    def acknowledged(committed: int, acked: list[int]) -> None:
        consumer._committed_offset[ORDERS] = committed
        consumer._acked[ORDERS] = list(acked)
        consumer._acked_index[ORDERS] = set(acked)

    acknowledged(30, [31, 32])
    assert type(consumer)._new_offset(consumer, ORDERS) == 33  # faust-streaming's off-by-one
    acknowledged(30, [31, 32])
    assert consumer._new_offset(ORDERS) is None
    assert app.held_commits.held_for(0) == [ORDERS]
