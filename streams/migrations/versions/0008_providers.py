"""provider_breakers: each worker's latest report of each provider's circuit breaker

Revision ID: 0008_providers
Revises: 0007_user_preferences
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008_providers"
down_revision = "0007_user_preferences"
branch_labels = None
depends_on = None


def _tz() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "provider_breakers",
        sa.Column("provider", sa.Text, primary_key=True),
        sa.Column("worker", sa.Text, primary_key=True),
        sa.Column("state", sa.Text, nullable=False),
        sa.Column("consecutive_failures", sa.Integer, nullable=False),
        sa.Column("requests_in_window", sa.Integer, nullable=False),
        sa.Column("last_error", sa.Text, nullable=True),
        sa.Column("last_error_at", _tz(), nullable=True),
        sa.Column("opened_at", _tz(), nullable=True),
        sa.Column("times_opened", sa.Integer, nullable=False),
        sa.Column("reported_at", _tz(), nullable=False),
        sa.Column("expires_at", _tz(), nullable=False),
        sa.Column("materialized_at", _tz(), nullable=False, server_default=sa.func.now()),
    )


def downgrade() -> None:
    op.drop_table("provider_breakers")
