"""Second stage of the metrics agent: partials -> panes -> closed windows on `analytics.*`.

One batch of partials is folded, then every window the watermark has passed is published (one
round of sends for the batch, awaited until the broker acknowledged them all), and only then
recorded as closed. A crash between the two publishes those windows again after the restart:
the records are deterministic (same key, same `event_id`, same values), so consumers that
deduplicate on either see each window once. Recording first instead would lose them.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Generic, TypeVar

from pydantic import BaseModel, ValidationError

from agents.metrics.windows import MetricsPartial, WindowAggregator
from agents.retry import Backoff, Sleep, retry_retriable
from schemas.analytics import ANALYTICS_RECORDS, WindowRecord, WindowResult
from streams.errors import RetriableError
from streams.runtime import OutgoingRecord, RecordSink, SourceRecord

log = logging.getLogger(__name__)

E = TypeVar("E")
SOURCE = "agent:metrics"


@dataclass(slots=True)
class AggregationStats:
    batches: int = 0
    partials: int = 0
    invalid_partials: int = 0
    windows_published: int = 0
    retries: int = 0


def window_record(result: WindowResult, published_at: datetime) -> tuple[str, WindowRecord]:
    """The output topic (base name) and the envelope of one window result."""
    for topic, (model, event_type, payload_model) in ANALYTICS_RECORDS.items():
        if type(result) is payload_model:
            envelope = model.model_validate(
                {
                    "event_id": model.deterministic_id(result, topic),
                    "event_type": event_type,
                    "occurred_at": result.window_end,
                    "ingested_at": published_at,
                    "source": SOURCE,
                    "correlation_id": result.key,
                    "payload": result,
                }
            )
            return topic, envelope
    raise TypeError(f"{type(result).__name__} has no analytics topic")


class MetricsAggregation(Generic[E]):
    """Processes batches of `E` carrying `MetricsPartial` JSON (Faust events in the worker)."""

    def __init__(
        self,
        *,
        aggregator: WindowAggregator,
        outputs: Mapping[str, RecordSink],
        encode: Callable[[BaseModel], bytes],
        describe: Callable[[E], SourceRecord],
        scope: Callable[[E], AbstractContextManager[None]],
        backoff: Backoff,
        wall_clock: Callable[[], float] = time.time,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.aggregator = aggregator
        self._outputs = outputs
        self._encode = encode
        self._describe = describe
        self._scope = scope
        self._backoff = backoff
        self._wall_clock = wall_clock
        self._sleep = sleep
        self.stats = AggregationStats()

    async def process(self, batch: Sequence[E]) -> None:
        for item in batch:
            record = self._describe(item)
            try:
                partial = MetricsPartial.model_validate_json(record.value or b"")
            except ValidationError as exc:
                log.warning("metrics: not a partial at offset %d: %s", record.offset, exc)
                self.stats.invalid_partials += 1
                continue
            with self._scope(item):
                self.aggregator.fold(partial)
            self.stats.partials += 1
        self.stats.batches += 1
        if batch:
            await self.close_windows(batch[-1])

    async def close_windows(self, scope_item: E) -> None:
        """Publish what the watermark has closed, then record it (in `scope_item`'s scope)."""
        closed = self.aggregator.closable()
        if closed is None:
            return
        if closed.results:
            await self._publish(closed.results, datetime.fromtimestamp(self._wall_clock(), UTC))
        with self._scope(scope_item):
            self.aggregator.record_closed(closed)
        self.stats.windows_published += len(closed.results)

    async def _publish(self, results: Sequence[WindowResult], published_at: datetime) -> None:
        by_topic: dict[str, list[OutgoingRecord]] = {}
        for result in results:
            topic, envelope = window_record(result, published_at)
            value = self._encode(envelope)
            by_topic.setdefault(topic, []).append(OutgoingRecord(result.key.encode(), value))

        async def send() -> None:
            await asyncio.gather(
                *(self._outputs[topic].send_all(records) for topic, records in by_topic.items())
            )

        await retry_retriable(
            send,
            backoff=self._backoff,
            what=f"publishing {len(results)} closed windows",
            sleep=self._sleep,
            on_retry=self._count_retry,
        )

    def _count_retry(self, error: RetriableError, delay_s: float) -> None:
        self.stats.retries += 1
