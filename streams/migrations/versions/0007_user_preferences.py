"""user_preferences: the effective notification preferences folded from users.events

(The revision id was assigned before the design settled: templates need no table, their
catalogue is the compacted topic notifications.templates; this revision holds the preferences
view of issue 16.)

Revision ID: 0007_user_preferences
Revises: 0006_suppressions
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB, UUID

revision = "0007_user_preferences"
down_revision = "0006_suppressions"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "user_preferences",
        sa.Column("user_id", sa.Text, primary_key=True),
        sa.Column("categories", JSONB, nullable=True),
        sa.Column("quiet_hours", JSONB, nullable=True),
        sa.Column("time_zone", sa.Text, nullable=True),
        sa.Column("locale", sa.Text, nullable=True),
        sa.Column("event_id", UUID(as_uuid=True), nullable=True),
        sa.Column("revision", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "materialized_at",
            sa.DateTime(timezone=True),
            nullable=True,
            server_default=sa.func.now(),
        ),
    )


def downgrade() -> None:
    op.drop_table("user_preferences")
