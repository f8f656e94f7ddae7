"""Deleting old notifications from the delivery views: the rows and their timelines, oldest
first, in short transactions.

At 1,000 notifications/s `notification_deliveries` grows by 86 million rows a day and its
timeline by four times that; nothing else removes them. A purge deletes the notifications
created before a time, `batch_rows` at a time, each batch one transaction that locks only the
rows it deletes (`SKIP LOCKED`: purges running in several workers at once share the work instead
of waiting for each other). The statistics' rollups are left as they are: they are the history
of the purged notifications (`delivery_rollups`).
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from streams.stores.database import translate_database_errors

_PURGE = sa.text(
    """
    WITH doomed AS (
        SELECT notification_id FROM notification_deliveries
         WHERE created_at < :before
         ORDER BY created_at LIMIT :batch_rows
           FOR UPDATE SKIP LOCKED
    ),
    steps AS (
        DELETE FROM notification_transitions AS t USING doomed
         WHERE t.notification_id = doomed.notification_id
    ),
    gone AS (
        DELETE FROM notification_deliveries AS d USING doomed
         WHERE d.notification_id = doomed.notification_id
        RETURNING 1
    )
    SELECT count(*) FROM gone
    """
)


async def purge_deliveries(engine: AsyncEngine, created_before: datetime, batch_rows: int) -> int:
    """Deletes the notifications created before `created_before` with their timelines, until
    none is left (or none that another purge has not locked); how many."""
    purged = 0
    while True:
        async with translate_database_errors(), engine.begin() as conn:
            params = {"before": created_before, "batch_rows": batch_rows}
            deleted = int((await conn.execute(_PURGE, params)).scalar_one())
        purged += deleted
        if deleted < batch_rows:
            return purged
