"""Batches taken from an agent's channel queue, on a Faust app that is built but never started:
the queue is filled here as the conductor fills it, with the events it makes."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from faust.types import EventT
from faust.types.tuples import TP

from streams.runtime.app import TributaryApp
from streams.runtime.event_batches import acknowledge, agent_label
from tests.unit.streams.runtime.agent_streams import (
    AGENT,
    GENERATION,
    TOPIC,
    AgentStream,
    batches,
    put,
    sensor,
)


def offsets(events: list[EventT[Any]]) -> list[int]:
    return [event.message.offset for event in events]


async def test_what_is_queued_is_taken_in_order_up_to_max_events_per_batch(
    stream: AgentStream,
) -> None:
    put(stream, 0, 1, 2, 3, 4, 5)
    taken = batches(stream, 3, 60.0)  # full batches never wait for the window
    assert offsets(await anext(taken)) == [0, 1, 2]
    assert offsets(await anext(taken)) == [3, 4, 5]


async def test_a_batch_waits_within_its_window_for_more_events(stream: AgentStream) -> None:
    put(stream, 0)
    next_batch = asyncio.ensure_future(anext(batches(stream, 2, 60.0)))
    for _ in range(5):
        await asyncio.sleep(0)
    assert not next_batch.done()  # one event, and the window is open: it waits for more
    put(stream, 1)
    assert offsets(await next_batch) == [0, 1]


async def test_a_batch_is_handed_over_when_its_window_closes(stream: AgentStream) -> None:
    put(stream, 7)
    batch = await asyncio.wait_for(anext(batches(stream, 500, 0.01)), timeout=10)
    assert offsets(batch) == [7]
    assert (batch.agent, batch.taken_at_s > 0) == (AGENT, True)


async def test_events_the_consumer_moved_on_from_are_dropped_and_counted(
    app: TributaryApp, stream: AgentStream
) -> None:
    """Fetched before the last rebalance: the seek to committed offsets reads them again."""
    put(stream, 0, generation=GENERATION - 1)
    put(stream, 1, 2)
    batch = await anext(batches(stream, 3, 60.0))
    assert offsets(batch) == [1, 2]
    assert sensor(app).skips == [(AGENT, 1)]
    assert len(app.consumer.unacked) == 2


async def test_nothing_is_handed_over_while_the_flow_is_suspended(
    app: TributaryApp, stream: AgentStream
) -> None:
    put(stream, 0, 1)
    app.flow_control.suspend()  # a rebalance under way
    next_batch = asyncio.ensure_future(anext(batches(stream, 2, 60.0)))
    for _ in range(5):
        await asyncio.sleep(0)
    assert sensor(app).skips == [(AGENT, 2)]
    assert not next_batch.done()  # and it waits for the next events
    next_batch.cancel()
    assert set(app.consumer.unacked) == set()


async def test_taken_events_of_acknowledged_topics_are_tracked_as_unacknowledged(
    app: TributaryApp, stream: AgentStream
) -> None:
    put(stream, 0)
    put(stream, 0, topic="p-orders.other")  # a topic no agent acknowledges
    batch = await anext(batches(stream, 2, 60.0))
    assert [event.message.tracked for event in batch] == [True, False]
    assert set(app.consumer.unacked) == {batch[0].message}


async def test_an_acknowledged_batch_is_acked_to_the_consumer_and_counted_once(
    app: TributaryApp, stream: AgentStream
) -> None:
    put(stream, 4, 5)
    batch = await anext(batches(stream, 2, 60.0))
    acknowledge(app, batch)
    assert all(event.message.acked for event in batch)
    assert list(app.consumer._acked[TP(TOPIC, 0)]) == [4, 5]
    assert set(app.consumer.unacked) == set()
    [(agent, events, held_s)] = sensor(app).acks
    assert (agent, events, held_s >= 0) == (AGENT, 2, True)


async def test_a_record_two_agents_read_is_acked_once_both_have(
    app: TributaryApp, stream: AgentStream
) -> None:
    put(stream, 9)
    batch = await anext(batches(stream, 1, 60.0))
    batch[0].message.incref(2)  # the conductor counts one reference per agent on the topic
    acknowledge(app, batch)
    assert not batch[0].message.acked
    acknowledge(app, batch)  # the other agent's acknowledgement
    assert batch[0].message.acked


async def test_a_batch_counts_as_in_flight_while_the_agent_holds_it(
    app: TributaryApp, stream: AgentStream
) -> None:
    put(stream, 0, 1)
    taken = batches(stream, 1, 60.0)
    await anext(taken)
    assert app.batches_in_flight == 1
    await anext(taken)
    assert app.batches_in_flight == 1
    await taken.aclose()  # type: ignore[attr-defined]
    assert app.batches_in_flight == 0


async def test_an_error_thrown_into_the_channel_is_raised_to_the_agent(
    stream: AgentStream,
) -> None:
    await stream.channel.throw(RuntimeError("decoder failed"))
    with pytest.raises(RuntimeError, match="decoder failed"):
        await anext(batches(stream, 2, 60.0))


async def test_the_batches_end_when_faust_ends_the_agents_stream(stream: AgentStream) -> None:
    """Stopping an agent, Faust throws `StopAsyncIteration` into its channel."""
    put(stream, 0)
    taken = batches(stream, 2, 60.0)
    next_batch = asyncio.ensure_future(anext(taken))
    for _ in range(5):
        await asyncio.sleep(0)
    await stream.channel.throw(StopAsyncIteration())
    with pytest.raises(StopAsyncIteration):
        await next_batch
    assert [batch async for batch in taken] == []


def test_an_agents_stream_is_labelled_by_the_agent_name(app: TributaryApp) -> None:
    named: Any = AgentStream(app, None)
    assert agent_label(named) == AGENT
    plain: Any = AgentStream(app, None, prefix="")
    assert agent_label(plain) == f"Stream: {TOPIC}"
