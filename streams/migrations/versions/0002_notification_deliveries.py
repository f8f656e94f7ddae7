"""notification_deliveries and notification_transitions: delivery tracking views

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import UUID

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def _tz() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "notification_deliveries",
        sa.Column("notification_id", sa.Text, primary_key=True),
        sa.Column("user_id", sa.Text),
        sa.Column("channel", sa.Text),
        sa.Column("category", sa.Text),
        sa.Column("template", sa.Text),
        sa.Column("state", sa.Text, nullable=False),
        sa.Column("state_rank", sa.SmallInteger, nullable=False),
        sa.Column("state_at", _tz(), nullable=False),
        sa.Column("reason", sa.Text),
        sa.Column("last_error", sa.Text),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("provider", sa.Text),
        sa.Column("provider_message_id", sa.Text),
        sa.Column("caused_at", _tz()),
        sa.Column("queued_at", _tz()),
        sa.Column("delivered_at", _tz()),
        sa.Column("created_at", _tz(), nullable=False),
        sa.Column("updated_at", _tz(), nullable=False),
        sa.Column("materialized_at", _tz(), nullable=False, server_default=sa.func.now()),
    )
    # A user's list, newest first (keyset pagination on created_at, notification_id).
    op.create_index(
        "ix_notification_deliveries_user",
        "notification_deliveries",
        ["user_id", sa.text("created_at DESC"), sa.text("notification_id DESC")],
    )
    # Statistics over a time range, optionally for one channel.
    op.create_index(
        "ix_notification_deliveries_created",
        "notification_deliveries",
        ["created_at", "channel"],
    )
    op.create_table(
        "notification_transitions",
        sa.Column("notification_id", sa.Text, nullable=False),
        sa.Column("state", sa.Text, nullable=False),
        sa.Column("occurred_at", _tz(), nullable=False),
        sa.Column("reason", sa.Text),
        sa.Column("attempt", sa.Integer),
        sa.Column("provider", sa.Text),
        sa.Column("provider_message_id", sa.Text),
        sa.Column("event_id", UUID(as_uuid=True), nullable=False),
        # Replays never duplicate a step; the constraint's index also serves the timeline read.
        sa.UniqueConstraint("notification_id", "state", "occurred_at", name="uq_transition"),
    )


def downgrade() -> None:
    op.drop_table("notification_transitions")
    op.drop_index("ix_notification_deliveries_created", table_name="notification_deliveries")
    op.drop_index("ix_notification_deliveries_user", table_name="notification_deliveries")
    op.drop_table("notification_deliveries")
