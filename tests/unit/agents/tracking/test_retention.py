"""The delivery views' retention timer: what it asks to purge, and a PostgreSQL outage."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import faust
import pytest

from agents.tracking.retention import (
    TIMER_NAME,
    DeliveryRetention,
    register_delivery_retention,
)
from streams.errors import ServiceUnavailableError
from streams.settings import NotificationSettings

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


class FakeStore:
    def __init__(self, deleted: int = 0, error: Exception | None = None) -> None:
        self.calls: list[tuple[datetime, int]] = []
        self.deleted = deleted
        self.error = error

    async def purge(self, created_before: datetime, batch_rows: int) -> int:
        self.calls.append((created_before, batch_rows))
        if self.error is not None:
            raise self.error
        return self.deleted


async def test_it_purges_what_was_created_before_the_retention() -> None:
    store = FakeStore(deleted=7)
    retention = DeliveryRetention(store, timedelta(days=30), batch_rows=100, clock=lambda: NOW)
    assert await retention.purge() == 7
    assert await retention.purge() == 7
    assert store.calls == [(NOW - timedelta(days=30), 100)] * 2
    assert retention.purged == 14


async def test_postgresql_away_defers_the_purge_to_the_next_interval(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = FakeStore(error=ServiceUnavailableError("postgresql", "connection refused"))
    retention = DeliveryRetention(store, timedelta(days=1), clock=lambda: NOW)
    assert await retention.purge() == 0
    assert retention.purged == 0
    assert "deferred to the next interval" in caplog.text


async def test_a_bug_in_the_purge_is_not_swallowed() -> None:
    retention = DeliveryRetention(FakeStore(error=ValueError("bad statement")), timedelta(days=1))
    with pytest.raises(ValueError, match="bad statement"):
        await retention.purge()


class FakeApp:
    """Records the timers asked for, as `faust.App.timer` takes them."""

    def __init__(self) -> None:
        self.timers: list[tuple[float, str, Callable[[], Awaitable[int]]]] = []

    def timer(self, interval: float, name: str) -> Callable[[Any], Any]:
        def register(fun: Callable[[], Awaitable[int]]) -> Callable[[], Awaitable[int]]:
            self.timers.append((interval, name, fun))
            return fun

        return register


async def test_no_timer_without_a_retention_and_one_that_purges_with_one() -> None:
    app, store = FakeApp(), FakeStore(deleted=3)
    assert register_delivery_retention(cast(faust.App, app), NotificationSettings(), store) is None
    assert app.timers == []
    settings = NotificationSettings(deliveries_retention_days=90, deliveries_purge_interval_s=60)
    retention = register_delivery_retention(cast(faust.App, app), settings, store)
    assert retention is not None
    [(interval_s, name, purge)] = app.timers
    assert (interval_s, name) == (60, TIMER_NAME)
    assert await purge() == 3
    [(created_before, _)] = store.calls
    assert datetime.now(UTC) - created_before >= timedelta(days=90)
