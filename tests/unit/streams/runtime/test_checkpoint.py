"""`ack_events`: a batch is acknowledged once its table changes are in their changelogs, and the
agent does not wait for that."""

from __future__ import annotations

import asyncio

import pytest

from streams.runtime.app import TributaryApp
from streams.runtime.batch_agent import event_scope
from streams.runtime.changelog_writes import ChangelogWrites
from streams.runtime.checkpoint import ack_events
from streams.runtime.event_batches import EventBatch
from tests.unit.streams.runtime.agent_streams import (
    AGENT,
    AgentStream,
    agent_app,
    batches,
    put,
    sensor,
)
from tests.unit.streams.runtime.recording_send import RecordingSend


@pytest.fixture
def send() -> RecordingSend:
    return RecordingSend()


@pytest.fixture
def app(send: RecordingSend) -> TributaryApp:
    app = agent_app(store="memory://")
    app.changelog_writes = ChangelogWrites(send, flush_interval_s=60)  # flushed by hand here
    app.Table("orders", partitions=1)
    return app


async def processed_batch(app: TributaryApp, stream: AgentStream, *offsets: int) -> EventBatch:
    """A batch taken and processed: each event changed a key of a table."""
    table = app.tables["orders"]
    put(stream, *offsets)
    batch = await anext(batches(stream, len(offsets), 60.0))
    for event in batch:
        with event_scope(event):
            table[f"o-{event.message.offset}".encode()] = {"status": "paid"}
    return batch


async def settle() -> None:
    for _ in range(10):
        await asyncio.sleep(0)


def acked(batch: EventBatch) -> list[bool]:
    return [event.message.acked for event in batch]


async def test_a_batch_is_acknowledged_once_its_changes_are_written_not_when_processed(
    app: TributaryApp, stream: AgentStream, send: RecordingSend
) -> None:
    batch = await processed_batch(app, stream, 4, 5)
    ack_events(stream, batch)  # returns at once: the agent takes its next batch
    await settle()
    assert (send.sent, acked(batch)) == ([], [False, False])  # held for the flush interval
    app.changelog_writes.flush()  # the interval has passed
    await settle()
    assert (len(send.sent), acked(batch)) == (1, [False, False])  # not in Kafka yet
    send.release.set()
    await settle()
    assert acked(batch) == [True, True]
    [(agent, events, _)] = sensor(app).acks
    assert (agent, events) == (AGENT, 2)


async def test_the_batch_latency_ends_when_it_is_processed_not_when_acknowledged(
    app: TributaryApp, stream: AgentStream, send: RecordingSend
) -> None:
    batch = await processed_batch(app, stream, 0)
    ack_events(stream, batch)
    assert batch.processed_at_s is not None
    send.release.set()
    await app.changelog_writes.written()
    await settle()
    [(_, _, held_s)] = sensor(app).acks
    assert held_s == batch.processed_at_s - batch.taken_at_s


async def test_during_a_rebalance_held_changes_go_out_at_once_and_nothing_is_acknowledged(
    app: TributaryApp, stream: AgentStream, send: RecordingSend
) -> None:
    """The flow is suspended: the batch will be read again after the seek (or by the next owner),
    and its changes must reach the changelog before the partition can have another owner."""
    batch = await processed_batch(app, stream, 1)
    app.flow_control.suspend()
    ack_events(stream, batch)
    await settle()
    assert len(send.sent) == 1  # not held for the interval
    send.release.set()
    await settle()
    assert acked(batch) == [False]  # refused: the consumer moved on


async def test_after_a_failed_changelog_write_the_next_batch_is_refused(
    app: TributaryApp, stream: AgentStream, send: RecordingSend
) -> None:
    send.failure = RuntimeError("broker refused")
    send.release.set()
    first = await processed_batch(app, stream, 1)
    ack_events(stream, first)
    with pytest.raises(RuntimeError, match="broker refused"):
        await app.changelog_writes.written()
    assert acked(first) == [False]
    second = await processed_batch(app, stream, 2)
    with pytest.raises(RuntimeError, match="broker refused"):
        ack_events(stream, second)  # the agent crashes the worker
    assert acked(second) == [False]
