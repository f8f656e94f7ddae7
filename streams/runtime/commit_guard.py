"""Commits that never pass a record no agent acknowledged.

Faust commits, per partition, the first run of consecutive acknowledged offsets, with the gaps it
believes the log has filled in; before that it checks that the run starts where the last commit
left off, but with an off-by-one (`min(acked) - committed > 1` in faust-streaming 0.15): when
exactly the next record to commit is missing, the commit passes it. Its gaps are guesses too
(`streams.runtime.fetch_positions`). Both made a survivor of the two-worker test commit past orders
it
never applied.

`guard_commits` replaces the consumer's choice of offset: from the committed offset (or, before a
first commit, where the last seek put the partition) it moves past offsets that were
acknowledged or that fetching saw the log skip, and stops at the first that is neither. A
partition that cannot move while acknowledged records wait behind such an offset is "held"
(`HeldCommits`); the stall watchdog treats one held for its timeout as stalled and restarts
fetching from the committed offsets, so the missing record is read and processed again.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from faust.types import TP

from streams.runtime.fetch_positions import FetchPositions, Span


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


def commit_point(start: int, acked: Iterable[int], absent: Sequence[Span]) -> int:
    """The offset to commit: from `start`, past every offset acknowledged or known to be absent
    (`absent` holds [begin, end) spans)."""
    done = set(acked)
    spans = sorted(absent)
    offset, span = start, 0
    while True:
        if offset in done:
            offset += 1
            continue
        while span < len(spans) and spans[span][1] <= offset:
            span += 1  # spans wholly behind: the offset only grows
        if span < len(spans) and spans[span][0] <= offset:
            offset = spans[span][1]
            continue
        return offset


def guard_commits(consumer: Any, held: HeldCommits, positions: FetchPositions) -> None:
    """Make `consumer` commit a partition only up to its first record neither acknowledged nor
    known to be absent."""

    def new_offset(tp: TP) -> int | None:
        start = consumer._committed_offset.get(tp)
        if start is None:
            start = positions.origin(tp)
        acked = consumer._acked[tp]
        if start is None:  # never sought: nothing says where the partition starts
            if acked:
                held.hold(tp)
            return None
        forget_below(tp, start)
        # Past what was acknowledged, and past a transaction's marker at the end of the log.
        offset = commit_point(start, acked, positions.absent(tp))
        if offset == start:
            if acked:
                held.hold(tp)
            else:
                held.release(tp)
            return None
        held.release(tp)
        forget_below(tp, offset)
        positions.committed(tp, offset)
        return offset

    def forget_below(tp: TP, offset: int) -> None:
        acked = consumer._acked[tp]
        if acked and min(acked) < offset:
            acked[:] = [acked_offset for acked_offset in acked if acked_offset >= offset]
            consumer._acked_index[tp].intersection_update(acked)

    consumer._new_offset = new_offset
