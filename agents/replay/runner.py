"""One replay: read a view's topic into shadow tables with the worker's fold, then swap.

1. Fresh shadow tables (`streams.stores.shadow`); with `since`, a copy of the live view, and the
   fold's table seeded from it (only for folds that converge whatever they saw before).
2. The topic, from its beginning (or the first record at `since`) up to its end as it was when
   the replay started, in batches through the fold, reporting progress.
3. A catch-up to the current end, then the swap: the live tables locked against writes, one last
   catch-up (nothing can be written to the live view meanwhile), the differences counted, the
   live rows replaced, in one transaction. The worker's blocked writes then land on the new rows
   (its upserts never move a row back, so those it had already made are made again harmlessly).

Until the swap commits, the live view is untouched: an interrupted replay (Ctrl-C, a crash, a
service going away) drops its shadows, or leaves them for the next replay to drop.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from agents.replay.views import FoldContext, ReplayView, seed_orders
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
    """Reads ranges of the topic through the fold, in batches, keeping count and position."""

    def __init__(
        self,
        view: ReplayView,
        reader: TopicReader,
        fold_batch: Callable[[list[SourceRecord]], Any],
        batch_records: int,
        progress: Callable[[ProgressSample], None],
        idle_timeout_s: float,
    ) -> None:
        self._view = view
        self._reader = reader
        self._fold = fold_batch
        self._batch_records = batch_records
        self._progress = progress
        self._idle_timeout_s = idle_timeout_s
        self._started = time.monotonic()
        self.records = 0

    async def read(self, starts: Offsets, ends: Mapping[int, int]) -> Offsets:
        positions = dict(starts)
        pending = {p: e for p, e in ends.items() if positions.get(p, e) < e}
        if not pending:
            return positions
        batch: list[SourceRecord] = []
        reading = self._reader.read(
            {p: positions[p] for p in pending}, pending, self._idle_timeout_s
        )
        async for record in reading:
            batch.append(
                SourceRecord(
                    record.topic, record.partition, record.offset, record.key, record.value
                )
            )
            positions[record.partition] = record.offset + 1
            if len(batch) >= self._batch_records:
                await self._flush(batch, positions, ends)
                batch = []
        await self._flush(batch, positions, ends)
        return positions

    async def _flush(
        self, batch: list[SourceRecord], positions: Offsets, ends: Mapping[int, int]
    ) -> None:
        if batch:
            await self._fold(batch)
            self.records += len(batch)
        elapsed_s = max(time.monotonic() - self._started, 1e-9)
        lag = sum(max(end - positions.get(p, end), 0) for p, end in ends.items())
        self._progress(
            ProgressSample(self._view.name, self.records, self.records / elapsed_s, lag, elapsed_s)
        )


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
    topic = TopicCatalog(settings.topic_prefix, settings.kafka).for_topic(view.topic).name
    engine = create_engine(settings.database)
    shadows = ShadowViews(engine, view.tables)
    try:
        await shadows.prepare()
        swapped = False
        try:
            table: dict[bytes, dict[str, Any]] = {}
            shadow_tables = [t.shadow for t in view.tables]
            if since is not None:
                await shadows.copy_live()
                table = await seed_orders(engine, shadow_tables[0])
            fold = view.build(FoldContext(engine, settings, codec, shadow_tables, table))
            async with TopicReader(settings.kafka, topic) as reader:
                reading = _Reading(
                    view,
                    reader,
                    fold.process,
                    settings.worker.batch_events,
                    progress,
                    settings.kafka.request_timeout_s,
                )
                marks = await reader.watermarks()
                if since is None:
                    starts = {p: low for p, (low, _) in marks.items()}
                else:
                    starts = await reader.offsets_at(int(since.timestamp() * 1000))
                positions = await reading.read(starts, {p: high for p, (_, high) in marks.items()})

                async def catch_up() -> None:
                    nonlocal positions
                    ends = {p: high for p, (_, high) in (await reader.watermarks()).items()}
                    positions = await reading.read(positions, ends)

                await catch_up()
                if dry_run:
                    diffs = await shadows.diff()
                else:
                    diffs = await shadows.swap(catch_up)
                    swapped = True
        finally:
            if not swapped:
                await shadows.discard()
        return ReplayReport(view.name, topic, reading.records, swapped, diffs)
    finally:
        await engine.dispose()
