"""`tributary stats rebuild --since TIME [--until TIME]`: the delivery statistics' rollups of
those hours counted again from `notification_deliveries`.

For the rows the rollups missed: a worker of a version before migration 0009 keeps writing rows
without them until it is replaced, so after an upgrade with workers running, rebuild from the
migration's time on. Prints `{"from", "to", "notifications"}`: the whole hours rebuilt and the
notifications they count now.
"""

from __future__ import annotations

from datetime import UTC, datetime

from streams.cli.errors import UsageError
from streams.cli.output import Output
from streams.stores.delivery_store import DeliveryStore


async def rebuild_statistics(
    store: DeliveryStore, since: datetime, until: datetime | None, output: Output
) -> int:
    end = until or datetime.now(UTC)
    if since >= end:
        raise UsageError("--since must be before --until (or now)")
    rebuilt = await store.rebuild_statistics(since, end)
    output.record(
        {
            "from": rebuilt.start.isoformat(),
            "to": rebuilt.end.isoformat(),
            "notifications": rebuilt.notifications,
        }
    )
    return 0
