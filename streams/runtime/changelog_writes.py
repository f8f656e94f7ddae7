"""Table changes durable in their changelog before the events that caused them are acknowledged.

A Faust table sends each change to its changelog topic in the background (`send_soon`), and
Faust commits acknowledged offsets after a producer flush that gives up after 0.1 s without
progress. So an offset can be committed while the changelog record of the change it caused is
still in the producer's buffer; if the worker then stops (or dies), the change is gone, the
event is not read again, and whoever recovers the table from the changelog never sees it.

`DurableTable` (`streams.runtime.durable_table`) hands every change to the app's
`ChangelogWrites`; `ack_events` (in `streams.runtime.checkpoint`) awaits them before
acknowledging a batch. A changelog write that fails fails the batch: nothing it caused is
acknowledged.

Changes are not sent one by one (Faust's `send_soon` costs about 75 µs of worker CPU per
record): they are buffered, the last value per key and partition only (the changelog is
compacted, so the values a key had in between are never read back), and sent when an agent
acknowledges its batch, as one record batch per changelog partition
(`streams.runtime.partition_batches`). A buffered change is in the table's store already, as
with Faust's own path; what is not yet in the changelog is what `written()` waits for. Once a
batch is acknowledged, the table's store records the changelog offset it holds, as Faust's own
send callback does, so a restart reads the changelog from there on.
"""

from __future__ import annotations

import asyncio
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


class ChangelogWrites:
    """The changelog sends not yet acknowledged by Kafka, across the app's tables.

    Each send gets a sequence number; a waiter waits for every send numbered below the count
    when it began (not for sends made after: under load there always are some). One callback
    per send and one future per waiter, rather than a shield per send per waiter: an agent
    acknowledging a batch of 500 changes paid for 500 shields and a gather.
    """

    def __init__(self, send: SendChanges | None = None) -> None:
        self._send = send
        self.buffered = BufferedChanges()
        # Flushes go out one at a time, in order: a key changed in two batches must reach its
        # changelog partition in the order of the changes.
        self._sending = asyncio.Lock()
        self._tracked = 0
        # Sends not yet acknowledged, by sequence number, oldest first (dicts keep order).
        self._pending: dict[int, asyncio.Future[Any]] = {}
        # (sends to wait for, the waiter's future), in the order waiters began.
        self._waiters: deque[tuple[int, asyncio.Future[None]]] = deque()

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
        if not self.buffered or self._send is None:
            return
        changes, self.buffered = self.buffered, BufferedChanges()
        self.track(asyncio.ensure_future(self._send_in_order(changes)))

    async def _send_in_order(self, changes: BufferedChanges) -> None:
        assert self._send is not None
        async with self._sending:
            await self._send(changes)

    async def written(self) -> None:
        """Return once every change made so far is in its changelog; raise if one failed.

        Every agent waits on the same sends; a waiter cancelled (its agent stopping) cancels
        only its own future, never the sends the others and the producer still need.
        """
        self.flush()
        if not self._pending:
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append((self._tracked, waiter))
        await waiter

    def _done(self, seq: int, sent: asyncio.Future[Any]) -> None:
        del self._pending[seq]
        failure = None if sent.cancelled() else sent.exception()
        if failure is not None:
            for upto, waiter in self._waiters:
                if upto > seq and not waiter.done():
                    waiter.set_exception(failure)
        oldest = next(iter(self._pending), self._tracked)
        while self._waiters and self._waiters[0][0] <= oldest:
            _, waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)


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
