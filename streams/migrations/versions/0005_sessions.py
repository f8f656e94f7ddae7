"""user_sessions and user_devices: sessions and devices folded from auth.events

Revision ID: 0005_sessions
Revises: 0004_order_history_stats
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import UUID

revision = "0005_sessions"
down_revision = "0004_order_history_stats"
branch_labels = None
depends_on = None


def _tz() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "user_sessions",
        sa.Column("user_id", sa.Text, primary_key=True),
        sa.Column("session_id", sa.Text, primary_key=True),
        sa.Column("device_id", sa.Text, nullable=True),
        sa.Column("ip", sa.Text, nullable=False),
        sa.Column("user_agent", sa.Text, nullable=True),
        sa.Column("country", sa.Text, nullable=True),
        sa.Column("started_at", _tz(), nullable=False),
        sa.Column("last_seen_at", _tz(), nullable=False),
        sa.Column("ended_at", _tz(), nullable=True),
        sa.Column("end_reason", sa.Text, nullable=True),
        sa.Column("opened_by", UUID(as_uuid=True), nullable=False),
        sa.Column("logins", sa.Integer, nullable=False),
        sa.Column("revision", sa.BigInteger, nullable=False),
        sa.Column("materialized_at", _tz(), nullable=False, server_default=sa.func.now()),
    )
    op.create_table(
        "user_devices",
        sa.Column("user_id", sa.Text, primary_key=True),
        sa.Column("device_id", sa.Text, primary_key=True),
        sa.Column("first_seen_at", _tz(), nullable=False),
        sa.Column("last_seen_at", _tz(), nullable=False),
        sa.Column("last_ip", sa.Text, nullable=False),
        sa.Column("user_agent", sa.Text, nullable=True),
        sa.Column("country", sa.Text, nullable=True),
        sa.Column("login_count", sa.Integer, nullable=False),
        sa.Column("first_event_id", UUID(as_uuid=True), nullable=False),
        sa.Column("flagged", sa.Boolean, nullable=False),
        sa.Column("revision", sa.BigInteger, nullable=False),
        sa.Column("materialized_at", _tz(), nullable=False, server_default=sa.func.now()),
    )


def downgrade() -> None:
    op.drop_table("user_devices")
    op.drop_table("user_sessions")
