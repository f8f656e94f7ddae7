"""One batch of `analytics.orders` records (closed windows) -> the `order_window_stats` rows.

The body of the `materialize_order_stats` agent: the metrics agent publishes each window once it
closed, and this writes the batch's windows in one batched upsert, from which the API sums order
statistics. A record that does not decode is logged and skipped: the topic is our own output, so
such a record is a bug to see in the log, not input to set aside for a sender.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from agents.retry import Backoff, Sleep, retry_retriable
from schemas.analytics import OrdersWindow, OrdersWindowRecord
from streams.errors import PoisonError, RetriableError
from streams.runtime import SourceRecord

log = logging.getLogger(__name__)

E = TypeVar("E")
Decode = Callable[[bytes | None], OrdersWindowRecord]


class WindowSink(Protocol):
    async def upsert(self, windows: Sequence[OrdersWindow]) -> int: ...


@dataclass(slots=True)
class WindowStatsStats:
    batches: int = 0
    windows: int = 0
    undecodable: int = 0
    rows_written: int = 0
    retries: int = 0


class OrderWindowMaterializer(Generic[E]):
    def __init__(
        self,
        *,
        decode: Decode,
        windows: WindowSink,
        describe: Callable[[E], SourceRecord],
        backoff: Backoff,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self._decode = decode
        self._windows = windows
        self._describe = describe
        self._backoff = backoff
        self._sleep = sleep
        self.stats = WindowStatsStats()

    async def process(self, batch: Sequence[E]) -> None:
        found: list[OrdersWindow] = []
        for item in batch:
            record = self._describe(item)
            try:
                found.append(self._decode(record.value).payload)
            except PoisonError as exc:
                log.warning(
                    "order stats skip %s[%d]@%d: %s",
                    record.topic,
                    record.partition,
                    record.offset,
                    exc,
                )
                self.stats.undecodable += 1
        if found:
            rows = await retry_retriable(
                lambda: self._windows.upsert(found),
                backoff=self._backoff,
                what=f"writing {len(found)} order windows",
                sleep=self._sleep,
                on_retry=self._count_retry,
            )
            self.stats.rows_written += rows
        self.stats.batches += 1
        self.stats.windows += len(found)

    def _count_retry(self, error: RetriableError, delay_s: float) -> None:
        self.stats.retries += 1
