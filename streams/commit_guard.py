"""Commits that never pass a record no agent acknowledged.

Faust commits, per partition, the first run of consecutive acknowledged offsets; before that it
checks that the run starts where the last commit left off, but with an off-by-one
(`min(acked) - committed > 1` in faust-streaming 0.15): when exactly the next record to commit
is missing, the commit passes it. Acknowledgements arrive in order per partition, so a missing
one is a record Faust dropped or skipped around a rebalance; the two-worker test saw a survivor
commit past exactly one such order, never applied (not in the table, not in its changelog).

`guard_commits` wraps the consumer's choice of offset: a partition whose next record is not
acknowledged is not committed, and is remembered in `HeldCommits`. The stall watchdog treats a
partition held for its timeout as stalled and restarts fetching from the committed offsets, so
the missing record is read and processed again.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from faust.types import TP


class HeldCommits:
    """Partitions whose commit waits for a record that was never acknowledged, and since when."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._since: dict[TP, float] = {}

    def hold(self, tp: TP) -> None:
        self._since.setdefault(tp, self._clock())

    def release(self, tp: TP) -> None:
        self._since.pop(tp, None)

    def held_for(self, at_least_s: float) -> list[TP]:
        """The partitions held for `at_least_s` or longer."""
        now = self._clock()
        return sorted(tp for tp, since in self._since.items() if now - since >= at_least_s)

    def clear(self) -> None:
        """Forget them all (after the consumer seeks to its committed offsets again)."""
        self._since.clear()


def next_offset_missing(consumer: Any, tp: TP) -> bool:
    """Whether acknowledged offsets wait behind one that was not: the committed offset is the
    next record to acknowledge, and every acknowledged offset is past it."""
    acked = consumer._acked[tp]
    committed = consumer._committed_offset.get(tp)
    if not acked or committed is None or consumer._gap.get(tp):
        # Before a first commit nothing says where to start; gaps (offsets the log does not
        # have) are Faust's to fill.
        return False
    return bool(min(acked) > committed)


def guard_commits(consumer: Any, held: HeldCommits) -> None:
    """Make `consumer` commit a partition only up to its first unacknowledged record."""
    choose = consumer._new_offset

    def new_offset(tp: TP) -> int | None:
        if next_offset_missing(consumer, tp):
            held.hold(tp)
            return None
        held.release(tp)
        offset: int | None = choose(tp)
        return offset

    consumer._new_offset = new_offset
