"""One replay: read a view's topic into shadow tables with the worker's fold, then swap.

1. Fresh shadow tables (`streams.stores.shadow`); with `since`, a copy of the live view, and the
   fold's table seeded from it (only for folds that converge whatever they saw before).
2. The topics (one after the other), from their beginning (or the first record at `since`) up
   to their end as it was when the replay started, in batches through the fold, reporting
   progress.
3. A catch-up to the current end, then the swap: the live tables locked against writes, one last
   catch-up (nothing can be written to the live view meanwhile), the differences counted, the
   live rows replaced, in one transaction. The worker's blocked writes then land on the new rows
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

from agents.replay.views import FoldContext, ReplayView
from streams.cli.reader import TopicReader
from streams.kafka.catalog import TopicCatalog
from streams.kafka.wire import WireCodec
from streams.runtime import SourceRecord
from streams.settings import ReplayProcessSettings
from streams.stores.database import create_engine
from streams.stores.shadow import ShadowViews, TableDiff

# Offsets: per partition, the next offset to read.
Offsets = dict[int, int]


@dataclass(frozen=True, slots=True)
class ProgressSample:
    view: str
    records: int
    records_per_s: float
    lag: int
    elapsed_s: float

    def as_json(self) -> dict[str, Any]:
        return {
            "view": self.view,
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

    def as_json(self) -> dict[str, Any]:
        return {
            "view": self.view,
            "topic": self.topic,
            "records": self.records,
            "swapped": self.swapped,
            "tables": [diff.as_json() for diff in self.diffs],
        }


class _Reading:
    """Reads ranges of the view's topics through the fold, in batches, keeping count, position
    and lag (per topic, summed in the progress samples)."""

    def __init__(
        self,
        view: ReplayView,
        fold_batch: Callable[[list[SourceRecord]], Awaitable[None]],
        batch_records: int,
        progress: Callable[[ProgressSample], None],
        idle_timeout_s: float,
    ) -> None:
        self._view = view
        self._fold = fold_batch
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
            if self._view.keep(record.headers):
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
        self._progress(ProgressSample(name, self.records, self.records / elapsed_s, lag, elapsed_s))


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
    shadows = ShadowViews(engine, view.tables)
    try:
        await shadows.prepare()
        swapped = False
        try:
            table: dict[bytes, dict[str, Any]] = {}
            shadow_tables = [t.shadow for t in view.tables]
            if since is not None and view.seed is not None:
                await shadows.copy_live()
                table = await view.seed(engine, shadow_tables)
            fold = view.build(FoldContext(engine, settings, codec, shadow_tables, table))
            reading = _Reading(
                view,
                fold.process,
                settings.worker.batch_events,
                progress,
                settings.kafka.request_timeout_s,
            )
            async with AsyncExitStack() as stack:
                readers = [
                    await stack.enter_async_context(TopicReader(settings.kafka, topic))
                    for topic in topics
                ]
                positions: dict[str, Offsets] = {}
                for reader in readers:
                    marks = await reader.watermarks()
                    if since is None:
                        starts = {p: low for p, (low, _) in marks.items()}
                    else:
                        starts = await reader.offsets_at(int(since.timestamp() * 1000))
                    ends = {p: high for p, (_, high) in marks.items()}
                    positions[reader.topic] = await reading.read(reader, starts, ends)

                async def catch_up() -> None:
                    for reader in readers:
                        ends = {p: high for p, (_, high) in (await reader.watermarks()).items()}
                        done = await reading.read(reader, positions[reader.topic], ends)
                        positions[reader.topic] = done

                await catch_up()
                if dry_run:
                    diffs = await shadows.diff()
                else:
                    diffs = await shadows.swap(catch_up)
                    swapped = True
        finally:
            if not swapped:
                await shadows.discard()
        return ReplayReport(view.name, ", ".join(topics), reading.records, swapped, diffs)
    finally:
        await engine.dispose()
