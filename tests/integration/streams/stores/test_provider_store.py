"""The provider breakers' store against the real PostgreSQL: upserts guarded by report time."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from schemas.providers import BreakerReport
from streams.settings import Settings
from streams.stores.provider_store import ProviderStore

AT = datetime(2026, 12, 5, 12, tzinfo=UTC)


def report(worker: str, state: str, seconds: float, **more: Any) -> BreakerReport:
    at = AT + timedelta(seconds=seconds)
    fields: dict[str, Any] = {
        "provider": "sendgrid",
        "worker": worker,
        "state": state,
        "consecutive_failures": 0,
        "requests_in_window": 4,
        "times_opened": 0,
        "reported_at": at,
        "expires_at": at + timedelta(seconds=45),
    }
    return BreakerReport.model_validate(fields | more)


@pytest.fixture
async def store(settings: Settings) -> AsyncIterator[ProviderStore]:
    store = ProviderStore.from_settings(settings.database)
    yield store
    await store.close()


async def test_reports_round_trip_and_an_older_one_never_replaces_a_newer(
    store: ProviderStore,
) -> None:
    # The table is shared by every test run: each run's workers have names of their own.
    one, two = f"w-{uuid.uuid4().hex}", f"w-{uuid.uuid4().hex}"
    opened = report(
        one,
        "open",
        10,
        consecutive_failures=5,
        last_error="HTTP 503: down",
        last_error_at=AT,
        opened_at=AT,
        times_opened=1,
    )
    assert await store.write([opened, report(two, "closed", 10)]) == 2
    await store.write([report(one, "closed", 5)])  # older: ignored
    mine = {r.worker: r for r in await store.reports() if r.worker in (one, two)}
    assert mine == {one: opened, two: report(two, "closed", 10)}

    newer = report(one, "half-open", 20, opened_at=AT, times_opened=1)
    await store.write([newer])
    mine = {r.worker: r for r in await store.reports() if r.worker in (one, two)}
    assert mine[one] == newer
