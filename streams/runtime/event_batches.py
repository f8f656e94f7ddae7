"""An agent's batches, taken straight from the queue Faust's conductor fills for it.

Faust hands an agent its records through a `Stream`: `Stream.noack_take` starts a background
task that iterates the stream record by record (a `sleep(0)`, the generation and flow checks,
the sensors in, a processor appending to the buffer and, when the buffer is full, waiting for it
to be emptied), and the batch is what that task gathered. Every record costs a turn of that
machinery in every agent reading its topic: `bench_faust_floor.py` measured 39.7 µs of CPU per
record for one agent and 22 µs more per event for every further agent on the topic, against
16.7 µs for aiokafka consuming alone (`../shared/perf/floor.py`).

`take_batches` reads the agent's channel queue itself (the one the conductor puts the agent's
events in): it waits for a first event, takes what else is queued, and waits for more until
`within_s` after the first or `max_events` are taken. Then, once per event, it does what the
stream's iterator did: an event of an earlier consumer generation, or any event while the app's
flow is suspended (a rebalance), is dropped unacknowledged, to be read again after the seek to
committed offsets; the others are tracked as unacknowledged with the consumer, which is what
makes their offsets wait for `acknowledge`. The sensors hear of a batch once
(`TributaryApp.batch_sensor`), not of every event twice.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any, cast

from faust.types import ChannelT, EventT, StreamT

from streams.runtime.app import TributaryApp, consumer_moved_on


class EventBatch(list[EventT[Any]]):
    """The events of one batch in the order they arrived, with the agent that took them, when
    the first of them was taken and when the agent was done with them (`time.monotonic()`)."""

    def __init__(self, agent: str, taken_at_s: float) -> None:
        super().__init__()
        self.agent = agent
        self.taken_at_s = taken_at_s
        self.processed_at_s: float | None = None

    def processed(self) -> None:
        """The agent is done with the batch; its acknowledgement may come later (once its table
        changes are written), but its latency ends here."""
        self.processed_at_s = time.monotonic()


async def take_batches(
    stream: StreamT[Any], max_events: int, within_s: float
) -> AsyncIterator[EventBatch]:
    """Batches of up to `max_events` events of `stream`'s agent, or what came within `within_s`
    of the first; none is acknowledged (`acknowledge`). While the caller holds a batch, the app
    counts it in `batches_in_flight`."""
    app = cast(TributaryApp, stream.app)
    queue = cast(ChannelT[Any], stream.channel).queue
    agent = agent_label(stream)
    loop = asyncio.get_running_loop()
    while True:
        try:
            taken = [await queue.get()]
            taken_at_s = time.monotonic()
            await _fill(queue, taken, max_events, loop.time() + within_s)
        except StopAsyncIteration:
            return  # Faust ends an agent's stream (the agent stopping) by throwing this in
        batch = EventBatch(agent, taken_at_s)
        skipped = admit(app, taken, batch)
        if skipped:
            app.batch_sensor.skipped(agent, skipped)
        if not batch:
            continue
        app.batches_in_flight += 1
        try:
            yield batch
        finally:
            app.batches_in_flight -= 1


def agent_label(stream: StreamT[Any]) -> str:
    """An agent's stream carries the agent's name as its prefix; other streams their label."""
    prefix = getattr(stream, "prefix", "")
    return str(prefix) if prefix else stream.shortlabel


async def _fill(queue: Any, taken: list[Any], max_events: int, deadline: float) -> None:
    """Take from `queue` into `taken` until it holds `max_events` or the loop's clock reaches
    `deadline`; what is queued already is taken without waiting."""
    while len(taken) < max_events:
        if not queue.empty():
            taken.append(queue.get_nowait())  # raises an error thrown into the channel, as get
            continue
        timeout = asyncio.timeout_at(deadline)
        try:
            async with timeout:
                taken.append(await queue.get())
        except TimeoutError:
            if timeout.expired():
                return
            raise


def admit(app: TributaryApp, taken: Sequence[EventT[Any]], batch: EventBatch) -> int:
    """Append to `batch` the events of `taken` the consumer still stands behind, tracked as
    unacknowledged; return how many were dropped (see the module docstring)."""
    consumer = app.consumer
    acking_topics = app.topics.acking_topics
    track_unacked = consumer.unacked.add
    on_message_in = app.sensors.on_message_in
    for event in taken:
        message = event.message
        if consumer_moved_on(app, message):
            continue
        if not message.tracked and message.topic in acking_topics:
            message.tracked = True
            track_unacked(message)
            on_message_in(message.tp, message.offset, message)
        batch.append(event)
    return len(taken) - len(batch)


def acknowledge(app: TributaryApp, batch: EventBatch) -> None:
    """Acknowledge every event of `batch` to the consumer (`UnskippableEvent` refuses those the
    consumer has moved on from) and tell the sensors once, with the batch's latency up to its
    processing's end (up to now if that was not recorded)."""
    on_message_out = app.sensors.on_message_out
    for event in batch:
        if event.ack():  # the last of the agents reading its record
            message = event.message
            on_message_out(message.tp, message.offset, message)
    processed_at_s = batch.processed_at_s or time.monotonic()
    app.batch_sensor.acknowledged(batch.agent, len(batch), processed_at_s - batch.taken_at_s)
