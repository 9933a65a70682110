"""Retention: record when a retired version's folder was removed; order events by (received_at, id).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A plain ADD COLUMN on both dialects: nullable, so no table is rewritten.
    op.add_column("models", sa.Column("artifact_removed_at", sa.DateTime(timezone=True), nullable=True))
    # Retention walks old events in (received_at, id) order, a batch at a time. On received_at alone
    # PostgreSQL read and sorted every remaining old row for each batch; the wider index replaces
    # the old one, so writes still maintain one index on received_at.
    op.create_index(op.f("ix_events_received_at_id"), "events", ["received_at", "id"])
    op.drop_index(op.f("ix_events_received_at"), table_name="events")


def downgrade() -> None:
    op.create_index(op.f("ix_events_received_at"), "events", ["received_at"])
    op.drop_index(op.f("ix_events_received_at_id"), table_name="events")
    # DROP COLUMN directly (SQLite 3.35+): batch mode would rebuild the table from its reflection.
    op.drop_column("models", "artifact_removed_at")
