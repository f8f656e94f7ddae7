"""materialize_preferences: `users.events` -> the `user_preferences` rows the API serves.

Its own agent (the app's consumer group, beside route_notifications on the same topic), so a
PostgreSQL outage delays the view, never the notifications. Per batch: one read of the rows of
the batch's users, the fold in memory, one transaction of writes; then the offsets are
acknowledged. Events at or below a row's revision were applied already (a replay) and are
skipped. Records that do not decode are skipped: route_notifications dead-letters them.

Read-after-write: the view lags the topic by a batch (usually well under a second); the API's
answer to a change names the event id the row will show once applied.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Generic, Protocol, TypeVar

import faust
from faust.types import AgentT, EventT

from agents.preferences.fold import fold_preferences
from agents.retry import Backoff, Sleep, retry_retriable
from schemas.preferences import PreferencesView
from schemas.users import UserEvent
from streams.errors import PoisonError, RetriableError
from streams.kafka.catalog import TopicCatalog
from streams.kafka.wire import WireCodec
from streams.runtime import SourceRecord, batch_agent, batch_size, describe_event, raw_topic
from streams.settings import WorkerSettings

AGENT_NAME = "materialize_preferences"
E = TypeVar("E")
T = TypeVar("T")


class PreferenceRows(Protocol):
    async def get_many(self, user_ids: Sequence[str]) -> dict[str, PreferencesView]: ...

    async def write(
        self, views: Sequence[PreferencesView], deletions: Sequence[tuple[str, int]]
    ) -> None: ...


@dataclass(slots=True)
class PreferencesStats:
    batches: int = 0
    events: int = 0
    undecodable: int = 0
    rows_written: int = 0
    rows_deleted: int = 0
    # None are set aside here (route_notifications dead-letters what does not decode).
    dead_letters: int = 0
    retries: int = 0


class PreferencesMaterializer(Generic[E]):
    def __init__(
        self,
        rows: PreferenceRows,
        decode: Callable[[bytes | None], UserEvent],
        describe: Callable[[E], SourceRecord],
        backoff: Backoff,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self._rows = rows
        self._decode = decode
        self._describe = describe
        self._backoff = backoff
        self._clock = clock
        self._sleep = sleep
        self.stats = PreferencesStats()

    async def process(self, batch: Sequence[E]) -> None:
        events: list[tuple[UserEvent, int]] = []
        for item in batch:
            record = self._describe(item)
            try:
                events.append((self._decode(record.value), record.offset))
            except PoisonError:
                self.stats.undecodable += 1
        users = sorted({event.payload.user_id for event, _ in events})
        current = await self._retry(lambda: self._rows.get_many(users), "reading preferences")
        views, deletions = fold_batch(current, events, self._clock())
        await self._retry(lambda: self._rows.write(views, deletions), "writing preferences")
        self.stats.batches += 1
        self.stats.events += len(batch)
        self.stats.rows_written += len(views)
        self.stats.rows_deleted += len(deletions)

    async def _retry(self, operation: Callable[[], Awaitable[T]], what: str) -> T:
        def count(_error: RetriableError, _delay_s: float) -> None:
            self.stats.retries += 1

        return await retry_retriable(
            operation, backoff=self._backoff, what=what, sleep=self._sleep, on_retry=count
        )


def fold_batch(
    current: dict[str, PreferencesView],
    events: Sequence[tuple[UserEvent, int]],
    now: datetime,
) -> tuple[list[PreferencesView], list[tuple[str, int]]]:
    """The rows to write and the `(user id, revision)` deletions, one per user of the batch."""
    state: dict[str, PreferencesView | None] = dict(current)
    last: dict[str, int] = {}
    for event, offset in events:
        user_id = event.payload.user_id
        held = state.get(user_id)
        if held is not None and offset <= held.revision:
            continue  # applied before: a replay
        state[user_id] = fold_preferences(held, event, offset, now)
        last[user_id] = offset
    views = [view for user_id in last if (view := state[user_id]) is not None]
    deletions = [(user_id, offset) for user_id, offset in last.items() if state[user_id] is None]
    return views, deletions


def register_preferences(
    app: faust.App,
    catalog: TopicCatalog,
    worker: WorkerSettings,
    rows: PreferenceRows,
    codec: WireCodec,
) -> tuple[PreferencesMaterializer[EventT[bytes]], AgentT[bytes]]:
    materializer: PreferencesMaterializer[EventT[bytes]] = PreferencesMaterializer(
        rows, lambda raw: codec.decode(raw, UserEvent), describe_event, Backoff()
    )
    topic = raw_topic(app, catalog.for_topic("users.events").name)
    agent = batch_agent(app, topic, AGENT_NAME, materializer.process, batch_size(worker))
    return materializer, agent
