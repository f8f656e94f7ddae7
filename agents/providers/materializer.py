"""The breaker reports of `notifications.providers` -> `provider_breakers` in PostgreSQL.

One upsert per batch, of the latest report of each provider and worker in it. A report that
cannot be read is counted and skipped: the topic is written by our own workers, and one bad
record must not hold the view of every provider back.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from pydantic import ValidationError

from agents.retry import Backoff, retry_retriable
from schemas.providers import BreakerReport

log = logging.getLogger(__name__)


class BreakerSink(Protocol):
    async def write(self, reports: Sequence[BreakerReport]) -> int: ...


@dataclass(slots=True)
class MaterializerStats:
    batches: int = 0
    reports: int = 0
    rows: int = 0
    unreadable: int = 0


def latest_reports(values: Sequence[bytes | None], stats: MaterializerStats) -> list[BreakerReport]:
    latest: dict[tuple[str, str], BreakerReport] = {}
    for value in values:
        try:
            report = BreakerReport.model_validate_json(value or b"")
        except ValidationError as exc:
            stats.unreadable += 1
            log.error("unreadable breaker report skipped: %s", exc.errors()[:1])
            continue
        pair = (report.provider, report.worker)
        if pair not in latest or latest[pair].reported_at <= report.reported_at:
            latest[pair] = report
    return list(latest.values())


class BreakerMaterializer:
    def __init__(self, store: BreakerSink, backoff: Backoff | None = None) -> None:
        self._store = store
        self._backoff = backoff or Backoff()
        self.stats = MaterializerStats()

    async def process(self, values: Sequence[bytes | None]) -> None:
        reports = latest_reports(values, self.stats)
        if reports:
            await retry_retriable(
                lambda: self._store.write(reports),
                backoff=self._backoff,
                what=f"writing {len(reports)} breaker reports",
            )
        self.stats.batches += 1
        self.stats.reports += len(values)
        self.stats.rows += len(reports)
