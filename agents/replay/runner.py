"""One replay: read a view's topic into shadow tables with the worker's fold, then swap.

1. Fresh shadow tables (`streams.stores.shadow`); with `since`, either
   * a copy of the live view, and the fold's table seeded from it, for folds that converge
     whatever they saw before (orders, deliveries): the topics are then read from `since`; or
   * for a fold that cannot start from stored rows (sessions: it counts logins, and its entries
     hold what no row does), the keys with records since `since` (a first read, of those records
     only): their whole history is folded from the topic's beginning into empty shadows, and
     only their rows are compared and replaced. Each key's rows are a function of its own
     records, so they come out as a full replay makes them; the other keys' rows stay as the
     live view has them.
2. The topics (one after the other), from their beginning (or as said above) up to their end as
   it was when the replay started, in batches through the fold, reporting progress.
3. A catch-up to the current end, then the swap: the live tables locked against writes, one last
   catch-up (nothing can be written to the live view meanwhile), the live rows that differ from
   the shadow's rewritten (and counted), in one transaction. The worker's blocked writes then
   land on the new rows
   (its upserts never move a row back, so those it had already made are made again harmlessly).

Until the swap commits, the live view is untouched: an interrupted replay (Ctrl-C, a crash, a
service going away) drops its shadows, or leaves them for the next replay to drop.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from agents.replay.views import FoldContext, ReplayView
from streams.cli.reader import KafkaRecord, TopicReader
from streams.kafka.catalog import TopicCatalog
from streams.kafka.wire import WireCodec
from streams.runtime import SourceRecord
from streams.settings import ReplayProcessSettings
from streams.stores.database import create_engine
from streams.stores.shadow import KeyScope, ShadowViews, TableDiff

# Offsets: per partition, the next offset to read.
Offsets = dict[int, int]
# Per partition: the first retained offset and the offset the next record will get.
Marks = dict[int, tuple[int, int]]
Accept = Callable[[KafkaRecord], bool]
# What a progress sample is about: the fold, or the read of the keys with records since a time.
PHASE_FOLD = "fold"
PHASE_KEYS = "keys"


@dataclass(frozen=True, slots=True)
class ProgressSample:
    view: str
    records: int
    records_per_s: float
    lag: int
    elapsed_s: float
    phase: str = PHASE_FOLD

    def as_json(self) -> dict[str, Any]:
        return {
            "view": self.view,
            "phase": self.phase,
            "records": self.records,
            "records_per_s": round(self.records_per_s, 1),
            "lag": self.lag,
            "elapsed_s": round(self.elapsed_s, 3),
        }


@dataclass(frozen=True, slots=True)
class ReplayReport:
    view: str
    topic: str
    records: int
    swapped: bool
    diffs: list[TableDiff]
    # How many keys were rebuilt, when the replay rebuilt some only (sessions since a time).
    keys: int | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "view": self.view,
            "topic": self.topic,
            "records": self.records,
            "keys": self.keys,
            "swapped": self.swapped,
            "tables": [diff.as_json() for diff in self.diffs],
        }


class _Reading:
    """Reads ranges of the view's topics through the fold, in batches, keeping count, position
    and lag (per topic, summed in the progress samples). `accept` picks the records folded."""

    def __init__(
        self,
        view: ReplayView,
        fold_batch: Callable[[list[SourceRecord]], Awaitable[None]],
        batch_records: int,
        progress: Callable[[ProgressSample], None],
        idle_timeout_s: float,
        *,
        accept: Accept,
        phase: str = PHASE_FOLD,
    ) -> None:
        self._view = view
        self._fold = fold_batch
        self._accept = accept
        self._phase = phase
        self._batch_records = batch_records
        self._progress = progress
        self._idle_timeout_s = idle_timeout_s
        self._started = time.monotonic()
        self._lag: dict[str, int] = {}
        self.records = 0

    async def read(self, reader: TopicReader, starts: Offsets, ends: Mapping[int, int]) -> Offsets:
        positions = dict(starts)
        pending = {p: e for p, e in ends.items() if positions.get(p, e) < e}
        self._lag[reader.topic] = sum(e - positions[p] for p, e in pending.items())
        if not pending:
            return positions
        batch: list[SourceRecord] = []
        reading = reader.read({p: positions[p] for p in pending}, pending, self._idle_timeout_s)
        async for record in reading:
            positions[record.partition] = record.offset + 1
            if self._accept(record):
                where = (record.topic, record.partition, record.offset)
                batch.append(SourceRecord(*where, key=record.key, value=record.value))
            if len(batch) >= self._batch_records:
                await self._flush(reader.topic, batch, positions, ends)
                batch = []
        await self._flush(reader.topic, batch, positions, ends)
        return positions

    async def _flush(
        self, topic: str, batch: list[SourceRecord], positions: Offsets, ends: Mapping[int, int]
    ) -> None:
        if batch:
            await self._fold(batch)
            self.records += len(batch)
        elapsed_s = max(time.monotonic() - self._started, 1e-9)
        self._lag[topic] = sum(max(end - positions.get(p, end), 0) for p, end in ends.items())
        lag = sum(self._lag.values())
        name = self._view.name
        rate = self.records / elapsed_s
        self._progress(ProgressSample(name, self.records, rate, lag, elapsed_s, self._phase))


@dataclass(frozen=True, slots=True)
class _Start:
    """Where the fold starts: its table, per topic the first offsets, and the records it takes."""

    table: dict[bytes, dict[str, Any]]
    offsets: dict[str, Offsets]
    accept: Accept


async def replay(
    view: ReplayView,
    settings: ReplayProcessSettings,
    codec: WireCodec,
    progress: Callable[[ProgressSample], None],
    *,
    since: datetime | None = None,
    dry_run: bool = False,
) -> ReplayReport:
    if since is not None and not view.resumable:
        raise ValueError(f"{view.name} is replayed from the beginning only")
    catalog = TopicCatalog(settings.topic_prefix, settings.kafka)
    topics = [catalog.for_topic(base).name for base in view.topics]
    engine = create_engine(settings.database)
    try:
        async with AsyncExitStack() as stack:
            readers = [
                await stack.enter_async_context(TopicReader(settings.kafka, topic))
                for topic in topics
            ]
            return await _replay(view, settings, codec, progress, engine, readers, since, dry_run)
    finally:
        await engine.dispose()


async def _replay(
    view: ReplayView,
    settings: ReplayProcessSettings,
    codec: WireCodec,
    progress: Callable[[ProgressSample], None],
    engine: AsyncEngine,
    readers: list[TopicReader],
    since: datetime | None,
    dry_run: bool,
) -> ReplayReport:
    marks = {reader.topic: await reader.watermarks() for reader in readers}
    ends = {topic: {p: high for p, (_, high) in found.items()} for topic, found in marks.items()}
    keys = None
    if since is not None and view.scope_column is not None:
        column = view.scope_column
        keys = await _keys_since(view, settings, progress, readers, ends, since, column)
    shadows = ShadowViews(engine, view.tables, None if keys is None else keys.scope)
    await shadows.prepare()
    swapped = False
    try:
        start = await _start(view, engine, shadows, readers, marks, since, keys)
        shadow_tables = [t.shadow for t in view.tables]
        fold = view.build(FoldContext(engine, settings, codec, shadow_tables, start.table))
        reading = _Reading(
            view,
            fold.process,
            settings.worker.batch_events,
            progress,
            settings.kafka.request_timeout_s,
            accept=start.accept,
        )
        positions: dict[str, Offsets] = {}
        for reader in readers:
            topic = reader.topic
            positions[topic] = await reading.read(reader, start.offsets[topic], ends[topic])

        async def catch_up() -> None:
            for reader in readers:
                now = {p: high for p, (_, high) in (await reader.watermarks()).items()}
                positions[reader.topic] = await reading.read(reader, positions[reader.topic], now)

        await catch_up()
        if dry_run:
            diffs = await shadows.diff()
        else:
            diffs = await shadows.swap(catch_up)
            swapped = True
    finally:
        if not swapped:
            await shadows.discard()
    rebuilt = None if keys is None else len(keys.scope.keys)
    topics = ", ".join(reader.topic for reader in readers)
    return ReplayReport(view.name, topics, reading.records, swapped, diffs, rebuilt)


@dataclass(frozen=True, slots=True)
class _KeysSince:
    """The keys with records since a time: as the rows hold them (`scope`), as the records carry
    them (`raw`), and per topic the partitions holding them."""

    scope: KeyScope
    raw: frozenset[bytes]
    partitions: Mapping[str, frozenset[int]]


async def _keys_since(
    view: ReplayView,
    settings: ReplayProcessSettings,
    progress: Callable[[ProgressSample], None],
    readers: list[TopicReader],
    ends: Mapping[str, Offsets],
    since: datetime,
    column: str,
) -> _KeysSince:
    """Read the records from `since` to `ends` for their keys only (nothing is decoded)."""
    raw: set[bytes] = set()
    partitions: dict[str, set[int]] = {reader.topic: set() for reader in readers}

    async def collect(batch: list[SourceRecord]) -> None:
        for record in batch:
            if record.key is not None:
                raw.add(record.key)
                partitions[record.topic].add(record.partition)

    scan = _Reading(
        view,
        collect,
        settings.worker.batch_events,
        progress,
        settings.kafka.request_timeout_s,
        accept=lambda record: view.keep(record.headers),
        phase=PHASE_KEYS,
    )
    for reader in readers:
        starts = await reader.offsets_at(int(since.timestamp() * 1000))
        await scan.read(reader, starts, ends[reader.topic])
    return _KeysSince(
        scope=KeyScope(column, frozenset(_text_keys(raw))),
        raw=frozenset(raw),
        partitions={topic: frozenset(found) for topic, found in partitions.items()},
    )


def _text_keys(raw: set[bytes]) -> list[str]:
    """The keys as the view's rows hold them (a key that is not UTF-8 names no row)."""
    keys: list[str] = []
    for key in raw:
        try:
            keys.append(key.decode("utf-8"))
        except UnicodeDecodeError:
            continue
    return keys


async def _start(
    view: ReplayView,
    engine: AsyncEngine,
    shadows: ShadowViews,
    readers: list[TopicReader],
    marks: Mapping[str, Marks],
    since: datetime | None,
    keys: _KeysSince | None,
) -> _Start:
    """Where the fold starts: see the module docstring, step 1."""

    def keep(record: KafkaRecord) -> bool:
        return view.keep(record.headers)

    lows = {topic: {p: low for p, (low, _) in found.items()} for topic, found in marks.items()}
    if since is None:
        return _Start({}, lows, keep)
    if keys is not None:
        # The partitions holding none of the keys are skipped (started at their end).
        offsets = {
            topic: {
                p: low if p in keys.partitions.get(topic, ()) else marks[topic][p][1]
                for p, low in found.items()
            }
            for topic, found in lows.items()
        }
        raw = keys.raw

        def keep_key(record: KafkaRecord) -> bool:
            return record.key in raw and keep(record)

        return _Start({}, offsets, keep_key)
    assert view.seed is not None
    await shadows.copy_live()
    table = await view.seed(engine, [t.shadow for t in view.tables])
    at_ms = int(since.timestamp() * 1000)
    offsets = {reader.topic: await reader.offsets_at(at_ms) for reader in readers}
    return _Start(table, offsets, keep)
