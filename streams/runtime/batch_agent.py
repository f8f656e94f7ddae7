"""Every agent of the pipeline is one of these: take a batch, process it, acknowledge it.

A pipeline hands `batch_agent` a plain `process` coroutine (its batch logic, testable without
Faust) and gets back a Faust agent that:

- takes batches of up to `BatchSize.max_events` unacknowledged events, or what arrived within
  `BatchSize.within_s` of the first (`streams.runtime.event_batches.take_batches`);
- awaits `process(events)`, then has the batch acknowledged once its table changes are written
  (`ack_events`), in the order `streams.runtime.checkpoint` states, so a committed offset never
  outruns what it produced;
- crashes the worker on an unexpected error (`CrashingSupervisor`) rather than restarting in
  place: the batch in hand was handed to the crashed agent only, so it would stay unprocessed
  (and its offsets uncommitted) until the process restarts anyway. Failing loudly gets there
  sooner, and the next owner of the partitions processes the batch again.
"""

from __future__ import annotations

import weakref
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass
from typing import Any

import faust
from faust.streams import _current_event
from faust.types import AgentT, EventT, StreamT
from faust.web import Request, Response, View
from mode.supervisors import CrashingSupervisor

from streams.runtime.checkpoint import ack_events
from streams.runtime.event_batches import take_batches
from streams.runtime.records import SourceRecord
from streams.settings import WorkerSettings
from streams.structured_logs import bind_log_context

Batch = Sequence[EventT[bytes]]
BatchProcess = Callable[[Batch], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class BatchSize:
    """How much an agent takes at once: up to `max_events`, or what came within `within_s`."""

    max_events: int
    within_s: float


def batch_size(worker: WorkerSettings) -> BatchSize:
    return BatchSize(worker.batch_events, worker.batch_window_s)


def batch_agent(
    app: faust.App,
    source: Any,
    name: str,
    process: BatchProcess,
    size: BatchSize,
    *,
    stats: object | None = None,
) -> AgentT[Any]:
    """The agent `name` on `source` (a topic, or one Faust topic over several names).

    `stats`, a dataclass the pipeline updates as it goes, is served as JSON at
    `/agents/<name>/stats/` on the worker's web server when given.
    """

    async def body(stream: StreamT[bytes]) -> None:
        bind_log_context(agent=name)  # the agent's own task: every line it logs names it
        async for events in take_batches(stream, size.max_events, size.within_s):
            await process(events)
            ack_events(stream, events)

    body.__name__ = name
    agent = app.agent(source, name=name, supervisor_strategy=CrashingSupervisor)(body)
    if stats is not None:
        _register_stats(app, name, stats)
    return agent


def _register_stats(app: faust.App, agent_name: str, stats: Any) -> None:
    @app.page(f"/agents/{agent_name}/stats/", name=f"agents-{agent_name}-stats")
    class AgentStats(View):
        async def get(self, request: Request) -> Response:
            return self.json(asdict(stats))


class event_scope(AbstractContextManager[None]):  # noqa: N801 - read as the verb it is
    """Make `event` the one Faust believes is being processed, for table writes and reads.

    Faust routes a table write to the changelog partition (and the RocksDB partition store) of
    the event currently being processed, and reads a key in that partition's store alone. A
    batch (`take_batches`, as Faust's own `take_events`) is taken outside Faust's stream
    iteration, so in the agent body no event is current: table writes fail with "Cannot modify
    table key from outside of stream iteration" (faust-streaming issue #497), and a read looks
    for its key in every partition's store.
    Setting the context variable per event restores co-partitioning: a key's state lives in the
    partition its events came from. A class rather than a generator: entered for every record
    the agents process and every table read, where a generator's frame cost was seen in the
    worker's profile.
    """

    __slots__ = ("_event", "_token")

    def __init__(self, event: EventT[Any]) -> None:
        self._event = event

    def __enter__(self) -> None:
        self._token = _current_event.set(weakref.ref(self._event))

    def __exit__(self, *_exc: object) -> None:
        _current_event.reset(self._token)


def describe_event(event: EventT[Any]) -> SourceRecord:
    """The record behind a Faust event, for a pipeline's plain logic."""
    message = event.message
    return SourceRecord(
        topic=message.topic,
        partition=message.partition,
        offset=message.offset,
        key=message.key,
        value=message.value,
    )
