"""Where the consumer's fetching of each source partition stands, kept apart from Faust's guesses.

faust-streaming 0.15 loses records around seeks (two orders in the two-worker test, committed and
never applied). Its fetcher hands the drain loop a batch aiokafka fetched meanwhile; when a
seek (after a rebalance, or the stall watchdog's restart) lands while that batch is in flight or
being delivered, the records from before the seek are delivered after it. Faust then
- counts the offsets between the seek's target and the stale record as a "gap" (offsets the log
  does not have: transaction markers, compaction) and commits past them unread, and
- takes the stale record's offset as the last one read and drops the records the seek re-reads
  below it ("DROPPED MESSAGE ROFF").
(`tests/unit/streams/runtime/test_fetch_positions.py` shows both on Faust's own drain loop.)

`FetchPositions` follows what the fetcher really reads instead: a batch that was in flight while
one of its partitions was sought is not delivered, and that partition is sought again, to where
the seek put it; offsets are known to be absent only when one uninterrupted run of fetching went
past them: between two records, from a seek's target to the first record after it, or from the
last record to the consumer's position (which moves past transaction markers even when no record
follows them). `guard_fetching` puts it between Faust's consumer and aiokafka's client, turns
off Faust's own read-offset bookkeeping (every record fetched is delivered, so a re-read is
processed again: at-least-once) and makes every seek to the committed offsets land somewhere
known: a source partition never committed goes back to its beginning instead of staying where
the fetching was.
`streams.runtime.commit_guard` commits from that knowledge.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from faust.types import TP

# Offsets [begin, end) the log was seen not to have, per partition.
Span = tuple[int, int]


@dataclass(frozen=True, slots=True)
class FetchStart:
    """What the seeks looked like when a fetch was sent."""

    seeks_started: Mapping[TP, int]
    seeking: frozenset[TP]


@dataclass(frozen=True, slots=True)
class Admission:
    """A fetched batch sorted out: the records to deliver and the partitions to seek again."""

    records: dict[TP, list[Any]]
    # Partitions whose records were held back because a seek overlapped their fetch.
    refused: frozenset[TP]


class FetchPositions:
    """Per source partition: the offset fetching reads next, where the last seek put it, seeks
    under way, and offsets the log was seen to skip. Plain bookkeeping, no I/O."""

    def __init__(self) -> None:
        self._next: dict[TP, int] = {}
        self._origin: dict[TP, int] = {}
        self._absent: dict[TP, list[Span]] = {}
        self._seeks_started: Counter[TP] = Counter()
        self._seeking: Counter[TP] = Counter()
        # Partitions refused a batch, -> the lowest offset refused (where to go back to when the
        # seek that overlapped it had not moved the position: it was never committed).
        self._refused: dict[TP, int] = {}

    def next_offset(self, tp: TP) -> int | None:
        return self._next.get(tp)

    def origin(self, tp: TP) -> int | None:
        """Where the last seek put `tp`: where commits start before its first one."""
        return self._origin.get(tp)

    def absent(self, tp: TP) -> list[Span]:
        return list(self._absent.get(tp, ()))

    def fetch_started(self) -> FetchStart:
        return FetchStart(dict(self._seeks_started), frozenset(self._seeking))

    def seek_started(self, tps: Iterable[TP]) -> None:
        for tp in tps:
            self._seeks_started[tp] += 1
            self._seeking[tp] += 1

    def seek_ended(self, tps: Iterable[TP], targets: Mapping[TP, int]) -> None:
        """The seek of `tps` is over; those in `targets` now read from there (the others did
        not move: a seek to a committed offset that does not exist)."""
        for tp in tps:
            self._seeking[tp] -= 1
            if self._seeking[tp] <= 0:
                del self._seeking[tp]
        for tp, offset in targets.items():
            self._next[tp] = self._origin[tp] = offset

    def admit(
        self,
        records: Mapping[TP, Sequence[Any]],
        start: FetchStart,
        fetched_to: Mapping[TP, int] | None = None,
    ) -> Admission:
        """Split a fetched batch (records with `.offset`, in order per partition) into what may
        be delivered and the partitions a seek overlapped: their records may come from before
        the seek, or from after it with the position already past them; either way they are
        read again from where the seek put the partition.

        `fetched_to`: the consumer's position on each partition fetched, read as the fetch
        returned. Past its last record, the position has skipped what the log holds but no
        consumer sees (transaction markers, aborted or compacted records), records or not.
        """
        admitted: dict[TP, list[Any]] = {}
        refused = set()
        fetched_to = fetched_to or {}
        for tp in records.keys() | fetched_to.keys():
            batch = records.get(tp, ())
            overlapped = (
                tp in start.seeking
                or tp in self._seeking
                or self._seeks_started[tp] != start.seeks_started.get(tp, 0)
            )
            if overlapped and batch:
                refused.add(tp)
                first, known = batch[0].offset, self._refused.get(tp)
                self._refused[tp] = first if known is None else min(known, first)
            elif not overlapped:
                self._advance(tp, [record.offset for record in batch], fetched_to.get(tp))
                if batch:
                    admitted[tp] = list(batch)
        return Admission(admitted, frozenset(refused))

    def seek_again(self, tps: Iterable[TP]) -> dict[TP, int]:
        """The partitions refused a batch and no longer being sought -> where to seek them:
        where the last seek put them (or, if it did not move them, the first record refused)."""
        targets = {}
        for tp in tps:
            if tp in self._seeking or tp not in self._refused:
                continue
            refused_from = self._refused.pop(tp)
            targets[tp] = self._next.get(tp, refused_from)
        return targets

    def committed(self, tp: TP, offset: int) -> None:
        """Forget what lies below a commit."""
        spans = [(max(begin, offset), end) for begin, end in self.absent(tp) if end > offset]
        self._absent[tp] = spans

    def _advance(self, tp: TP, offsets: Sequence[int], fetched_to: int | None) -> None:
        cursor = self._next.get(tp)
        spans = self._absent.setdefault(tp, [])
        for offset in offsets:
            if cursor is not None and offset > cursor:
                spans.append((cursor, offset))
            cursor = offset + 1
        if fetched_to is not None:
            if cursor is not None and fetched_to > cursor:
                spans.append((cursor, fetched_to))
            cursor = fetched_to
        if cursor is not None:
            self._next[tp] = cursor


def guard_fetching(
    consumer: Any,
    positions: FetchPositions,
    is_source: Callable[[TP], bool],
) -> None:
    """Install `positions` on Faust's `consumer` (see the module docstring); `is_source` tells the
    partitions agents consume and acknowledge from the tables' changelogs, which Faust's recovery
    seeks and reads on its own terms."""
    fetch = consumer._getmany
    seek = consumer._seek
    seek_to_committed = consumer.seek_to_committed

    async def seek_sources(tp: TP, offset: int) -> None:
        sources = [tp] if is_source(tp) else []
        positions.seek_started(sources)
        try:
            await seek(tp, offset)
        finally:
            positions.seek_ended(sources, {tp: offset} if sources else {})
        await seek_refused(sources)

    async def seek_refused(tps: Iterable[TP]) -> None:
        targets = positions.seek_again(tps)
        if not targets:
            return
        assigned = consumer.assignment()  # one revoked meanwhile is sought by its next owner
        for tp, offset in targets.items():
            if tp in assigned:
                await seek_sources(tp, offset)

    async def guarded_seek_to_committed() -> Mapping[TP, int]:
        sources = [tp for tp in consumer.assignment() if is_source(tp)]
        positions.seek_started(sources)
        targets: dict[TP, int] = {}
        try:
            committed: Mapping[TP, int] = await seek_to_committed()
            targets = {tp: committed[tp] for tp in sources if (committed.get(tp) or 0) > 0}
            # aiokafka leaves a partition without a commit (or committed at 0) where its
            # fetching was, past records fetched and never processed: back to its beginning.
            unmoved = [tp for tp in sources if tp not in targets]
            if unmoved:
                starts = await consumer.earliest_offsets(*unmoved)
                assigned = consumer.assignment()  # as it is now, after that round trip
                for tp in unmoved:
                    if tp in assigned:
                        await seek(tp, starts.get(tp, 0))
                        targets[tp] = starts.get(tp, 0)
        finally:
            positions.seek_ended(sources, targets)
        await seek_refused(sources)
        return committed

    async def guarded_fetch(
        active_partitions: Any,
        timeout: float,  # noqa: ASYNC109 - Faust's signature
    ) -> Mapping[TP, Any]:
        start = positions.fetch_started()
        records: Mapping[TP, Sequence[Any]] = await fetch(
            active_partitions=active_partitions, timeout=timeout
        )
        sources = {tp: batch for tp, batch in records.items() if is_source(tp)}
        fetched = [tp for tp in active_partitions or () if is_source(tp)]
        admission = positions.admit(sources, start, kafka_positions(consumer, fetched))
        for tp in fetched:
            # Faust chooses offsets to commit only for partitions with acknowledgements on
            # record; one whose fetching only passed a transaction's marker needs a commit too.
            consumer._acked.setdefault(tp, [])
        await seek_refused(admission.refused)
        others = {tp: batch for tp, batch in records.items() if tp not in sources}
        return {**others, **admission.records}

    consumer._getmany = guarded_fetch
    consumer._seek = seek_sources
    consumer.seek_to_committed = guarded_seek_to_committed
    consumer._read_offset = UnreadOffsets()


def kafka_positions(consumer: Any, tps: Iterable[TP]) -> dict[TP, int]:
    """Where aiokafka will fetch `tps` from next. Read on the main thread as a fetch returns:
    only a fetch (which this follows) or a seek (which makes `admit` refuse it) moves it."""
    try:
        assignment = consumer._thread._consumer._subscription.subscription.assignment
    except AttributeError:  # not started, or no subscription yet
        return {}
    positions = {}
    for tp in tps:
        try:
            state = assignment.state_value(tp)
        except (KeyError, AttributeError):
            continue
        if state is not None and state.has_valid_position:
            positions[tp] = state.position
    return positions


class UnreadOffsets(dict[TP, int | None]):
    """Faust's read offsets, kept (for diagnostics) but never consulted: its drain loop drops a
    record below the read offset and counts offsets above it as a gap, and a read offset set by
    a record delivered across a seek makes both wrong. Delivery is `FetchPositions`' to decide."""

    def __getitem__(self, tp: TP) -> None:
        return None
