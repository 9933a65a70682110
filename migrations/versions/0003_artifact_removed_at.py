"""Record when retention removed a retired version's folder.

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


def downgrade() -> None:
    # DROP COLUMN directly (SQLite 3.35+): batch mode would rebuild the table from its reflection.
    op.drop_column("models", "artifact_removed_at")
