"""notification_stats_minutes and _hours: the delivery statistics' rollups, filled from the
deliveries already materialized

Revision ID: 0009_delivery_stats_rollups
Revises: 0008_providers
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

# The fill is the rollups' own statement (`streams.stores.delivery_rollups`), so that what the
# migration counts is what the tracker's writes would have counted.
from streams.stores.delivery_rollups import ROLLUPS, backfill_sql

revision = "0009_delivery_stats_rollups"
down_revision = "0008_providers"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for unit, table in ROLLUPS.items():
        op.create_table(
            table.name,
            sa.Column("period", sa.DateTime(timezone=True), primary_key=True),
            # '' when unknown: part of the key.
            sa.Column("channel", sa.Text, primary_key=True),
            sa.Column("category", sa.Text, primary_key=True),
            sa.Column("notifications", sa.BigInteger, nullable=False),
            sa.Column("delivered", sa.BigInteger, nullable=False),
            sa.Column("failed", sa.BigInteger, nullable=False),
            sa.Column("bounced", sa.BigInteger, nullable=False),
            sa.Column("spam", sa.BigInteger, nullable=False),
            # Counts per logarithmic latency bucket, without trailing zeros.
            sa.Column("latency_buckets", sa.ARRAY(sa.Integer), nullable=False),
        )
        op.execute(backfill_sql("notification_deliveries", table, unit))


def downgrade() -> None:
    for table in ROLLUPS.values():
        op.drop_table(table.name)
