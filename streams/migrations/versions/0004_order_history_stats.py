"""order_history (the audit trail), order_window_stats (closed analytics windows), and the
indexes the order list pages on

Revision ID: 0004_order_history_stats
Revises: 0003_api_keys
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import UUID

revision = "0004_order_history_stats"
down_revision = "0003_api_keys"
branch_labels = None
depends_on = None


def _tz() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "order_history",
        sa.Column("order_id", sa.Text, primary_key=True),
        sa.Column("event_id", UUID(as_uuid=True), primary_key=True),
        sa.Column("event_type", sa.Text, nullable=False),
        sa.Column("occurred_at", _tz(), nullable=False),
        sa.Column("ingested_at", _tz(), nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("correlation_id", sa.Text, nullable=False),
        sa.Column("causation_id", sa.Text, nullable=True),
        sa.Column("event_status", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("ignored", sa.Boolean, nullable=False),
        sa.Column("materialized_at", _tz(), nullable=False, server_default=sa.func.now()),
    )
    op.create_table(
        "order_window_stats",
        sa.Column("kind", sa.Text, primary_key=True),
        sa.Column("window_size_s", sa.Integer, primary_key=True),
        sa.Column("window_start", _tz(), primary_key=True),
        sa.Column("currency", sa.String(3), primary_key=True),
        sa.Column("window_end", _tz(), nullable=False),
        sa.Column("events", sa.BigInteger, nullable=False),
        sa.Column("orders_created", sa.BigInteger, nullable=False),
        sa.Column("orders_paid", sa.BigInteger, nullable=False),
        sa.Column("revenue_minor", sa.BigInteger, nullable=False),
        sa.Column("cancellations", sa.BigInteger, nullable=False),
        sa.Column("refunds", sa.BigInteger, nullable=False),
        sa.Column("refunded_minor", sa.BigInteger, nullable=False),
        sa.Column("materialized_at", _tz(), nullable=False, server_default=sa.func.now()),
    )
    op.create_index(
        "ix_order_window_stats_range", "order_window_stats", ["kind", "window_start", "window_end"]
    )
    # Newest first, keyset-paginated on (created_at, order_id): with and without a user.
    op.create_index("ix_order_views_created", "order_views", ["created_at", "order_id"])
    op.create_index(
        "ix_order_views_user_created", "order_views", ["user_id", "created_at", "order_id"]
    )


def downgrade() -> None:
    op.drop_index("ix_order_views_user_created", table_name="order_views")
    op.drop_index("ix_order_views_created", table_name="order_views")
    op.drop_index("ix_order_window_stats_range", table_name="order_window_stats")
    op.drop_table("order_window_stats")
    op.drop_table("order_history")
