"""Table changes durable in their changelog before the events that caused them are acknowledged.

A Faust table sends each change to its changelog topic in the background (`send_soon`), and
Faust commits acknowledged offsets after a producer flush that gives up after 0.1 s without
progress. So an offset can be committed while the changelog record of the change it caused is
still in the producer's buffer; if the worker then stops (or dies), the change is gone, the
event is not read again, and whoever recovers the table from the changelog never sees it.

`DurableTable` (`streams.runtime.durable_table`) hands every change to the app's
`ChangelogWrites`; `ack_events` (in `streams.runtime.checkpoint`) acknowledges a batch only
once they are written. A changelog write that fails stops the worker: nothing it caused, nor
anything after it, is acknowledged.

Changes are not sent one by one (Faust's `send_soon` costs about 75 µs of worker CPU per
record): they are buffered, the last value per key and partition only (the changelog is
compacted, so the values a key had in between are never read back), and sent as one record
batch per changelog partition (`streams.runtime.partition_batches`): once an agent is done with
its batch, or, with a flush interval (`worker.changelog_flush_interval_s`), at most that long
after, with the changes of every batch processed meanwhile. The acknowledgement then waits for
the write instead of the agent: the agent goes on, and a key that several batches change within
the interval (a notification's four statuses) reaches its changelog once. A buffered change is in
the table's store already, as with Faust's own path; what is not yet in the changelog is what
an acknowledgement waits for. Once written, the table's store records the changelog offset it
holds, as Faust's own send callback does, so a restart reads the changelog from there on.
"""

from __future__ import annotations

import asyncio
import logging
from asyncio import CancelledError
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any

from aiokafka import AIOKafkaProducer
from faust.types import TP

from streams.runtime.partition_batches import all_delivered, send_to_partition
from streams.runtime.records import OutgoingRecord

if TYPE_CHECKING:
    from streams.runtime.durable_table import DurableTable

log = logging.getLogger(__name__)


@dataclass
class BufferedChanges:
    """Table changes not yet sent: per (table, changelog partition), the last record per key."""

    records: dict[tuple[DurableTable, int], dict[bytes | None, OutgoingRecord]] = field(
        default_factory=dict
    )

    def add(self, table: DurableTable, partition: int, record: OutgoingRecord) -> None:
        self.records.setdefault((table, partition), {})[record.key] = record

    def __bool__(self) -> bool:
        return bool(self.records)


SendChanges = Callable[[BufferedChanges], Awaitable[None]]
# Told whether every change made before it asked is in its changelog (None) or why not.
AfterWritten = Callable[[BaseException | None], None]


class ChangelogWrites:
    """The changelog sends not yet acknowledged by Kafka, across the app's tables.

    Each send gets a sequence number; a waiter waits for every send numbered below the count
    when it began (not for sends made after: under load there always are some). One callback
    per send and one callback per waiter, rather than a shield per send per waiter: an agent
    acknowledging a batch of 500 changes paid for 500 shields and a gather.

    With `flush_interval_s` above 0, the buffer is written behind: an agent that asks to hear
    when its batch's changes are written (`after_written`) goes on with its next batch, and the
    buffer goes out at most `flush_interval_s` after the first such request, with what every
    agent changed meanwhile. A key changed by several batches in that time (a notification's
    statuses, a window's counts) is then one changelog record, not one per batch.

    A send that fails makes the writes `failed`: the table stores hold changes their changelogs
    may lack, so nothing is acknowledged after it (every later request is refused with the
    failure) and `on_failure` hears of it once, to stop the worker (unless it is stopping:
    `stop`).
    """

    def __init__(
        self,
        send: SendChanges | None = None,
        *,
        flush_interval_s: float = 0.0,
        on_failure: Callable[[BaseException], None] | None = None,
    ) -> None:
        self._send = send
        self.flush_interval_s = flush_interval_s
        self._on_failure = on_failure
        self.buffered = BufferedChanges()
        self.failed: BaseException | None = None
        # Flushes go out one at a time, in order: a key changed in two batches must reach its
        # changelog partition in the order of the changes.
        self._sending = asyncio.Lock()
        self._tracked = 0
        # Sends not yet acknowledged, by sequence number, oldest first (dicts keep order).
        self._pending: dict[int, asyncio.Future[Any]] = {}
        # (sends to wait for, the waiter), in the order waiters began: the counts never fall.
        self._waiters: deque[tuple[int, AfterWritten]] = deque()
        # Waiters for the buffer as it is: they wait for the send that will carry it.
        self._buffer_waiters: list[AfterWritten] = []
        self._flush_timer: asyncio.TimerHandle | None = None
        self._stopping = False

    def stop(self) -> None:
        """The worker is stopping: send the buffer, and from now on hold nothing back.

        Agents finishing their last batches may still change tables; their changes go out at
        once, while the producer may still take them, rather than on a timer that would fire
        after it stopped. A write that fails now leaves its batches unacknowledged (the next
        owner reads them again) without crashing a worker that is stopping anyway.
        """
        self._stopping = True
        self.flush()

    def track(self, sent: asyncio.Future[Any]) -> None:
        seq = self._tracked
        self._tracked += 1
        self._pending[seq] = sent
        sent.add_done_callback(partial(self._done, seq))

    @property
    def pending(self) -> int:
        return len(self._pending)

    def flush(self) -> None:
        """Send the buffered changes (tracked, like any send, from now on)."""
        if self._flush_timer is not None:
            self._flush_timer.cancel()
            self._flush_timer = None
        if not self.buffered or self._send is None:
            return
        changes, self.buffered = self.buffered, BufferedChanges()
        self.track(asyncio.ensure_future(self._send_in_order(changes)))
        waiters, self._buffer_waiters = self._buffer_waiters, []
        self._waiters.extend((self._tracked, waiter) for waiter in waiters)

    async def _send_in_order(self, changes: BufferedChanges) -> None:
        assert self._send is not None
        async with self._sending:
            await self._send(changes)

    def after_written(self, waiter: AfterWritten) -> None:
        """Call `waiter` once every change made so far is in its changelog, or with the
        failure of a send that carried one; raise at once if a send failed before.

        The buffer is sent now without a flush interval, else within the interval."""
        if self.failed is not None:
            if self._stopping:
                waiter(self.failed)
                return
            raise self.failed
        if self.buffered and self._send is not None:
            self._buffer_waiters.append(waiter)
            if self.flush_interval_s <= 0 or self._stopping:
                self.flush()
            elif self._flush_timer is None:
                loop = asyncio.get_running_loop()
                self._flush_timer = loop.call_later(self.flush_interval_s, self.flush)
        elif self._pending:
            self._waiters.append((self._tracked, waiter))
        else:
            waiter(None)

    async def written(self) -> None:
        """Return once every change made so far is in its changelog (the buffer is sent now);
        raise if one failed.

        Every agent waits on the same sends; a waiter cancelled (its agent stopping) cancels
        only its own future, never the sends the others and the producer still need.
        """
        self.flush()
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.after_written(partial(_settle, waiter))
        await waiter

    def _done(self, seq: int, sent: asyncio.Future[Any]) -> None:
        del self._pending[seq]
        if sent.cancelled():  # the loop closing under it: not written, so nothing acknowledged
            self._fail(seq, asyncio.CancelledError("changelog send cancelled"))
        elif (failure := sent.exception()) is not None:
            self._fail(seq, failure)
        oldest = next(iter(self._pending), self._tracked)
        while self._waiters and self._waiters[0][0] <= oldest:
            _, waiter = self._waiters.popleft()
            _tell(waiter, None)

    def _fail(self, seq: int, failure: BaseException) -> None:
        """Fail every waiter that waits for send `seq`, and every later one."""
        failing = [waiter for upto, waiter in self._waiters if upto > seq]
        self._waiters = deque((upto, waiter) for upto, waiter in self._waiters if upto <= seq)
        failing += self._buffer_waiters
        self._buffer_waiters = []
        first = self.failed is None
        if first:
            self.failed = failure
        for waiter in failing:
            _tell(waiter, failure)
        # A worker stopping, or its loop closing, is on its way out already.
        stopping = self._stopping or isinstance(failure, CancelledError)
        if first and self._on_failure is not None and not stopping:
            self._on_failure(failure)


def _tell(waiter: AfterWritten, failure: BaseException | None) -> None:
    """A waiter's error must not keep the waiters after it from hearing."""
    try:
        waiter(failure)
    except Exception:
        log.exception("a waiter for changelog writes failed")


def _settle(waiter: asyncio.Future[None], failure: BaseException | None) -> None:
    if waiter.done():  # cancelled: its agent stopped
        return
    if failure is None:
        waiter.set_result(None)
    else:
        waiter.set_exception(failure)


async def send_changes(
    producer: Callable[[], AIOKafkaProducer],
    count_sent: Callable[[str, int], None],
    changes: BufferedChanges,
) -> None:
    """Send `changes`, one record batch per changelog partition; once all are acknowledged,
    record in each table's store the changelog offset it now holds (Faust's send callback
    does the same per record: a restart reads the changelog from there)."""
    kafka = producer()
    queued: list[tuple[DurableTable, TP, asyncio.Future[Any], int]] = []
    for (table, partition), by_key in changes.records.items():
        topic = table.changelog_topic.get_topic_name()
        for future, count in await send_to_partition(
            kafka, topic, partition, list(by_key.values())
        ):
            queued.append((table, TP(topic, partition), future, count))
    if not queued:
        return
    await all_delivered([future for _, _, future, _ in queued])
    held: dict[tuple[DurableTable, TP], int] = {}
    for table, tp, future, count in queued:
        last = future.result().offset + count - 1
        held[(table, tp)] = max(held.get((table, tp), -1), last)
        count_sent(tp.topic, count)
    for (table, tp), offset in held.items():
        table.data.set_persisted_offset(tp, offset)
