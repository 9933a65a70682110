"""Initial schema: models, training runs, events, rejected messages.

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
ACTIVE = sa.text("status = 'active'")


def _timestamp(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "models",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("detector", sa.String(length=100), nullable=False),
        sa.Column("detector_version", sa.String(length=50), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("artifact", sa.Text(), nullable=False),
        _timestamp("created_at"),
        sa.Column("manifest", sa.JSON(), nullable=False),
        sa.Column("metrics", sa.JSON(), nullable=True),
        sa.Column("threshold", sa.Float(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        _timestamp("retired_at", nullable=True),
        sa.CheckConstraint("status IN ('candidate', 'active', 'retired')", name=op.f("ck_models_status")),
        sa.CheckConstraint("version >= 1", name=op.f("ck_models_version_positive")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_models")),
        sa.UniqueConstraint("name", "version", name=op.f("uq_models_name_version")),
    )
    op.create_index(
        "uq_models_one_active_per_name",
        "models",
        ["name"],
        unique=True,
        sqlite_where=ACTIVE,
        postgresql_where=ACTIVE,
    )

    op.create_table(
        "training_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("model_id", sa.Integer(), nullable=True),
        sa.Column("model_name", sa.String(length=200), nullable=False),
        sa.Column("trigger", sa.String(length=16), nullable=False),
        _timestamp("started_at"),
        _timestamp("finished_at", nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("data_summary", sa.JSON(), nullable=True),
        sa.Column("metrics", sa.JSON(), nullable=True),
        sa.Column("decision", sa.String(length=32), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.CheckConstraint("status IN ('running', 'succeeded', 'failed')", name=op.f("ck_training_runs_status")),
        sa.CheckConstraint("trigger IN ('manual', 'scheduled')", name=op.f("ck_training_runs_trigger")),
        sa.ForeignKeyConstraint(
            ["model_id"], ["models.id"], name=op.f("fk_training_runs_model_id_models"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_training_runs")),
    )
    op.create_index(op.f("ix_training_runs_model_id"), "training_runs", ["model_id"])
    op.create_index(op.f("ix_training_runs_model_name_started_at"), "training_runs", ["model_name", "started_at"])

    op.create_table(
        "events",
        sa.Column("id", BigId, nullable=False),
        sa.Column("topic", sa.String(length=255), nullable=False),
        sa.Column("partition", sa.Integer(), nullable=False),
        sa.Column("offset", sa.BigInteger(), nullable=False),
        sa.Column("key", sa.Text(), nullable=True),
        sa.Column("source", sa.String(length=255), nullable=True),
        _timestamp("event_time", nullable=True),
        _timestamp("received_at"),
        sa.Column("model_id", sa.Integer(), nullable=True),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("threshold", sa.Float(), nullable=False),
        sa.Column("components", sa.JSON(), nullable=True),
        sa.Column("is_anomaly", sa.Boolean(), nullable=False),
        sa.Column("payload", sa.LargeBinary(), nullable=True),
        sa.Column("payload_content_type", sa.String(length=100), nullable=True),
        sa.Column("label", sa.String(length=16), nullable=True),
        _timestamp("labelled_at", nullable=True),
        sa.CheckConstraint("label IN ('normal', 'anomaly')", name=op.f("ck_events_label")),
        sa.ForeignKeyConstraint(
            ["model_id"], ["models.id"], name=op.f("fk_events_model_id_models"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_events")),
        sa.UniqueConstraint("topic", "partition", "offset", name=op.f("uq_events_topic_partition_offset")),
    )
    op.create_index(op.f("ix_events_source_is_anomaly_received_at"), "events", ["source", "is_anomaly", "received_at"])
    op.create_index(op.f("ix_events_model_id_received_at"), "events", ["model_id", "received_at"])
    op.create_index(op.f("ix_events_received_at"), "events", ["received_at"])

    op.create_table(
        "rejected_messages",
        sa.Column("id", BigId, nullable=False),
        sa.Column("topic", sa.String(length=255), nullable=False),
        sa.Column("partition", sa.Integer(), nullable=False),
        sa.Column("offset", sa.BigInteger(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("raw_head", sa.LargeBinary(), nullable=True),
        _timestamp("rejected_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rejected_messages")),
        sa.UniqueConstraint("topic", "partition", "offset", name=op.f("uq_rejected_messages_topic_partition_offset")),
    )
    op.create_index(op.f("ix_rejected_messages_rejected_at"), "rejected_messages", ["rejected_at"])


def downgrade() -> None:
    op.drop_table("rejected_messages")
    op.drop_table("events")
    op.drop_table("training_runs")
    op.drop_index("uq_models_one_active_per_name", table_name="models")
    op.drop_table("models")
