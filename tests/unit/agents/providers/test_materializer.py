"""Breaker reports to rows: the latest per provider and worker, one write per batch."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest

from agents.providers.materializer import BreakerMaterializer
from agents.retry import Backoff
from schemas.providers import BreakerReport
from streams.errors import ServiceUnavailableError

AT = datetime(2026, 12, 5, 12, tzinfo=UTC)


def report(provider: str, worker: str, state: str, seconds: float) -> BreakerReport:
    at = AT + timedelta(seconds=seconds)
    return BreakerReport.model_validate(
        {
            "provider": provider,
            "worker": worker,
            "state": state,
            "consecutive_failures": 0,
            "requests_in_window": 1,
            "times_opened": 0,
            "reported_at": at,
            "expires_at": at + timedelta(seconds=45),
        }
    )


class FakeStore:
    def __init__(self, failures: int = 0) -> None:
        self.failures = failures
        self.writes: list[list[BreakerReport]] = []

    async def write(self, reports: Sequence[BreakerReport]) -> int:
        if self.failures:
            self.failures -= 1
            raise ServiceUnavailableError("postgresql", "down")
        self.writes.append(list(reports))
        return len(reports)


def encoded(*reports: BreakerReport) -> list[bytes | None]:
    return [r.model_dump_json().encode() for r in reports]


async def test_one_write_of_the_latest_report_per_provider_and_worker() -> None:
    store = FakeStore()
    materializer = BreakerMaterializer(store)
    newer = report("sendgrid", "w1", "half-open", 2)
    await materializer.process(
        encoded(report("sendgrid", "w1", "open", 1), newer, report("sendgrid", "w2", "closed", 0))
        + encoded(report("sendgrid", "w1", "open", 1))
    )
    [written] = store.writes
    assert sorted(written, key=lambda r: r.worker) == [newer, report("sendgrid", "w2", "closed", 0)]
    assert (materializer.stats.reports, materializer.stats.rows) == (4, 2)


async def test_unreadable_values_are_counted_and_skipped() -> None:
    store = FakeStore()
    materializer = BreakerMaterializer(store)
    await materializer.process([b"{", None, *encoded(report("fcm", "w1", "closed", 0))])
    assert materializer.stats.unreadable == 2
    assert [len(w) for w in store.writes] == [1]


async def test_a_database_outage_is_waited_out() -> None:
    store = FakeStore(failures=2)
    materializer = BreakerMaterializer(store, Backoff(initial_s=0.001, max_s=0.001))
    await materializer.process(encoded(report("meta", "w1", "open", 0)))
    assert len(store.writes) == 1


@pytest.mark.parametrize("values", [[], [b"x"]])
async def test_a_batch_without_reports_writes_nothing(values: list[bytes | None]) -> None:
    store = FakeStore()
    await BreakerMaterializer(store).process(values)
    assert store.writes == []
