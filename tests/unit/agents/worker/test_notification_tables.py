"""The tables keyed by notification forget a notification as long after its last change as the
worker's settings say; `held_receipts`, which only earlier versions wrote, keeps its store."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from agents.dispatch.pipeline import LEDGER_TABLE, register_dispatch
from agents.tracking.pipeline import HELD_TABLE, TABLE_NAME, register_deliveries
from agents.worker.process import topic_catalog
from streams.runtime import create_faust_app
from streams.settings import WorkerProcessSettings
from streams.stores.delivery_store import DeliveryValues, TransitionValues


class NoRows:
    async def write(
        self, deliveries: Sequence[DeliveryValues], transitions: Sequence[TransitionValues]
    ) -> int:
        raise AssertionError("no batch is processed here")


def _tables(retention_days: int) -> dict[str, Any]:
    settings = WorkerProcessSettings.model_validate(
        {"worker": {"web_port": 6127, "notification_tables_retention_days": retention_days}}
    )
    app = create_faust_app(settings)
    catalog = topic_catalog(settings)
    register_deliveries(app, catalog, settings.worker, NoRows())
    register_dispatch(app, catalog, settings.worker, settings.dispatch, settings.providers)
    return dict(app.tables)


@pytest.mark.parametrize(("days", "retention_s"), [(3, 3 * 24 * 3600), (0, None)])
def test_the_notification_tables_have_the_worker_retention(
    days: int, retention_s: int | None
) -> None:
    tables = _tables(days)
    assert tables[TABLE_NAME].retention_s == retention_s
    assert tables[LEDGER_TABLE].retention_s == retention_s
    assert tables[HELD_TABLE].retention_s is None


def test_by_default_a_notification_is_kept_two_weeks() -> None:
    assert WorkerProcessSettings.model_validate({}).worker.notification_tables_retention_days == 14
