"""The delivery views' retention: every worker purges, on a timer, the notifications created
longer ago than `notifications.deliveries_retention_days` (`streams.stores.delivery_retention`).

Off by default (0 days): deleting what operators may still look up is their decision. A purge
that fails (PostgreSQL away) is logged and tried again at the next interval; purges in several
workers at once share the rows between them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

import faust

from streams.errors import RetriableError
from streams.settings import NotificationSettings

log = logging.getLogger(__name__)

TIMER_NAME = "purge_deliveries"
# Notifications deleted per transaction.
PURGE_BATCH_ROWS = 5000


class Purgeable(Protocol):
    async def purge(self, created_before: datetime, batch_rows: int) -> int: ...


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass
class DeliveryRetention:
    store: Purgeable
    keep: timedelta
    batch_rows: int = PURGE_BATCH_ROWS
    clock: Callable[[], datetime] = _now
    purged: int = 0

    async def purge(self) -> int:
        """One purge of what is older than `keep`; how many notifications it deleted (0 when
        PostgreSQL could not be reached: the next interval tries again)."""
        created_before = self.clock() - self.keep
        try:
            deleted = await self.store.purge(created_before, self.batch_rows)
        except RetriableError as exc:
            log.warning("delivery purge deferred to the next interval: %s", exc)
            return 0
        self.purged += deleted
        if deleted:
            log.info(
                "purged notifications from the delivery views",
                extra={"deleted": deleted, "created_before": created_before},
            )
        return deleted


def register_delivery_retention(
    app: faust.App, notifications: NotificationSettings, store: Purgeable
) -> DeliveryRetention | None:
    """The purge timer, when a retention is set."""
    days = notifications.deliveries_retention_days
    if days == 0:
        return None
    retention = DeliveryRetention(store, timedelta(days=days))
    app.timer(notifications.deliveries_purge_interval_s, name=TIMER_NAME)(retention.purge)
    return retention
