"""notification_suppressions: suppressed addresses (bounces, complaints) per user

Revision ID: 0006_suppressions
Revises: 0005_sessions
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_suppressions"
down_revision = "0005_sessions"
branch_labels = None
depends_on = None


def _tz() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "notification_suppressions",
        sa.Column("suppression_id", sa.Text, primary_key=True),
        sa.Column("channel", sa.Text, nullable=False),
        sa.Column("address", sa.Text, nullable=False),
        sa.Column("user_id", sa.Text, nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("reason", sa.Text),
        sa.Column("notification_id", sa.Text),
        sa.Column("suppressed_at", _tz(), nullable=False),
        sa.Column("soft_bounces", sa.Integer, nullable=False),
        sa.Column("materialized_at", _tz(), nullable=False, server_default=sa.func.now()),
    )
    op.create_index(
        "ix_notification_suppressions_address", "notification_suppressions", ["channel", "address"]
    )
    op.create_index("ix_notification_suppressions_user", "notification_suppressions", ["user_id"])
    op.create_index(
        "ix_notification_suppressions_page",
        "notification_suppressions",
        ["suppressed_at", "suppression_id"],
    )


def downgrade() -> None:
    op.drop_table("notification_suppressions")
