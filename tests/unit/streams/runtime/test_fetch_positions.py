"""Records fetched across a seek are read again from where the seek put them, never skipped.

The scenario tests run Faust's own drain loop (`Consumer._drain_messages`) over a scripted
consumer thread: the first fetch is still in flight when the partition is sought back to its
committed offset (as after a rebalance), and returns records from before the seek.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import faust
from aiokafka.structs import ConsumerRecord
from faust.types import TP

from streams.runtime.app import create_faust_app
from streams.runtime.fetch_positions import FetchPositions, FetchStart
from streams.settings import WorkerProcessSettings
from tests.unit.streams.runtime.scripted_thread import ScriptedThread

ORDERS = TP("orders.events", 5)
PAYMENTS = TP("payments.events", 0)


def record(offset: int, tp: TP = ORDERS) -> ConsumerRecord[bytes, bytes]:
    return ConsumerRecord(tp.topic, tp.partition, offset, 0, 0, None, b"order", None, 0, 5, ())


class SeekingThread(ScriptedThread):
    """The first fetch is still in flight when the consumer seeks back to its committed offset
    (20)."""

    def __init__(self, consumer: Any, batches: Sequence[Mapping[TP, list[Any]]]) -> None:
        super().__init__(batches, {ORDERS}, end=24)
        self.consumer = consumer
        self.sought = False

    async def getmany(
        self,
        active_partitions: Any,
        timeout: float,  # noqa: ASYNC109 - the consumer thread's signature
    ) -> Mapping[TP, list[Any]]:
        if self.batches and not self.sought:
            self.sought = True
            await self.consumer.perform_seek()
        return await super().getmany(active_partitions, timeout)

    async def seek_to_committed(self) -> Mapping[TP, int]:
        return {ORDERS: 20}

    def seek(self, tp: TP, offset: int) -> None:
        pass


async def drain(app: faust.App, batches: Sequence[Mapping[TP, list[Any]]]) -> list[int]:
    """Run Faust's drain loop over `batches`; the offsets delivered, each acknowledged."""
    consumer: Any = app.consumer
    app.topics.acking_topics.add(ORDERS.topic)  # as an agent subscribing to it does
    consumer._active_partitions = {ORDERS}
    consumer._committed_offset[ORDERS] = 20
    thread = consumer._thread = SeekingThread(consumer, batches)
    delivered = []

    async def deliver(message: Any) -> None:
        delivered.append(message.offset)
        consumer.ack(message)

    consumer.callback = deliver

    class Fetcher:
        _stopped = thread.stopped

    await consumer._drain_messages(Fetcher())
    return delivered


# Before the seek the fetching had read 20..23 (never processed); after it, 20..23 again.
STALE_THEN_SOUGHT = [
    {ORDERS: [record(22), record(23)]},
    {ORDERS: [record(o) for o in range(20, 24)]},
]


async def test_fausts_drain_loop_commits_past_records_it_never_delivered() -> None:
    app = faust.App("plain-faust", broker="kafka://localhost:9092", store="memory://")
    delivered = await drain(app, STALE_THEN_SOUGHT)
    # The stale 22 made 21..22 a "gap" and the read offset 23: 20..22 read again were dropped.
    assert 20 not in delivered
    assert 21 not in delivered
    assert app.consumer._new_offset(ORDERS) == 23  # committed past 20 and 21, never processed


async def test_the_apps_consumer_delivers_every_record_from_the_seek_on() -> None:
    app = create_faust_app(WorkerProcessSettings.model_validate({"worker": {"store": "memory://"}}))
    delivered = await drain(app, STALE_THEN_SOUGHT)
    assert delivered == [20, 21, 22, 23]  # the stale batch was held back
    assert app.consumer._new_offset(ORDERS) == 24
    assert app.fetch_positions.next_offset(ORDERS) == 24


def positions_after_seek(tp: TP, offset: int) -> tuple[FetchPositions, FetchStart]:
    positions = FetchPositions()
    positions.seek_started([tp])
    positions.seek_ended([tp], {tp: offset})
    return positions, positions.fetch_started()


def test_offsets_between_records_fetched_in_one_run_are_absent() -> None:
    positions, start = positions_after_seek(ORDERS, 20)
    admitted = positions.admit({ORDERS: [record(21), record(22), record(25)]}, start)
    assert [r.offset for r in admitted.records[ORDERS]] == [21, 22, 25]
    # 20: the seek's target, skipped by the first record (a transaction marker, say).
    assert positions.absent(ORDERS) == [(20, 21), (23, 25)]
    positions.admit({ORDERS: [record(27)]}, positions.fetch_started())
    assert positions.absent(ORDERS) == [(20, 21), (23, 25), (26, 27)]
    assert positions.next_offset(ORDERS) == 28


def test_a_batch_a_seek_overlapped_is_refused_and_sought_again_where_the_seek_put_it() -> None:
    positions, _ = positions_after_seek(ORDERS, 10)
    positions.admit({ORDERS: [record(10), record(11)]}, positions.fetch_started())
    start = positions.fetch_started()
    positions.seek_started([ORDERS])  # sought while the next fetch is in flight
    admitted = positions.admit({ORDERS: [record(12)], PAYMENTS: [record(3, PAYMENTS)]}, start)
    assert admitted.refused == {ORDERS}
    assert list(admitted.records) == [PAYMENTS]
    assert positions.seek_again([ORDERS]) == {}  # not while that seek is under way
    positions.seek_ended([ORDERS], {ORDERS: 11})
    assert positions.seek_again([ORDERS]) == {ORDERS: 11}
    assert positions.seek_again([ORDERS]) == {}
    assert positions.absent(ORDERS) == []  # nothing is known absent from a refused batch


def test_a_refused_partition_the_seek_did_not_move_goes_back_to_its_first_refused_record() -> None:
    positions = FetchPositions()
    start = positions.fetch_started()
    positions.seek_started([ORDERS])
    positions.seek_ended([ORDERS], {})  # no committed offset: the position stayed
    positions.admit({ORDERS: [record(4), record(5)]}, start)
    assert positions.seek_again([ORDERS]) == {ORDERS: 4}


def test_what_lies_below_a_commit_is_forgotten() -> None:
    positions, start = positions_after_seek(ORDERS, 0)
    positions.admit({ORDERS: [record(2), record(5), record(9)]}, start)
    positions.committed(ORDERS, 4)
    assert positions.absent(ORDERS) == [(4, 5), (6, 9)]


def test_a_position_past_the_last_record_marks_what_fetching_skipped_as_absent() -> None:
    positions, start = positions_after_seek(ORDERS, 5)
    # 5, 6 then a transaction's commit marker at 7: the consumer's position is 8.
    positions.admit({ORDERS: [record(5), record(6)]}, start, fetched_to={ORDERS: 8})
    assert positions.absent(ORDERS) == [(7, 8)]
    # A fetch that returned nothing but passed another marker.
    positions.admit({}, positions.fetch_started(), fetched_to={ORDERS: 9})
    assert positions.absent(ORDERS) == [(7, 8), (8, 9)]
    assert positions.next_offset(ORDERS) == 9


def test_a_position_read_across_a_seek_says_nothing() -> None:
    positions, _ = positions_after_seek(ORDERS, 5)
    start = positions.fetch_started()
    positions.seek_started([ORDERS])
    positions.seek_ended([ORDERS], {ORDERS: 40})
    positions.admit({}, start, fetched_to={ORDERS: 40})
    assert positions.absent(ORDERS) == []
    assert positions.next_offset(ORDERS) == 40


class Revoking(SeekingThread):
    """The partition is revoked while its refused batch is in flight: seeking it would fail."""

    revoked = False

    async def getmany(
        self,
        active_partitions: Any,
        timeout: float,  # noqa: ASYNC109 - the consumer thread's signature
    ) -> Mapping[TP, list[Any]]:
        batch = await super().getmany(active_partitions, timeout)
        self.revoked = True
        return batch

    def assignment(self) -> set[TP]:
        return set() if self.revoked else {ORDERS}

    def seek(self, tp: TP, offset: int) -> None:
        if self.revoked:
            raise AssertionError(f"{tp} sought after it was revoked")


async def test_a_refused_partition_revoked_meanwhile_is_left_to_its_next_owner() -> None:
    app = create_faust_app(WorkerProcessSettings.model_validate({"worker": {"store": "memory://"}}))
    consumer: Any = app.consumer
    app.topics.acking_topics.add(ORDERS.topic)
    consumer._active_partitions = {ORDERS}
    thread = consumer._thread = Revoking(consumer, [{ORDERS: [record(22)]}])
    assert await consumer._getmany(active_partitions={ORDERS}, timeout=0) == {}
    assert thread.revoked
