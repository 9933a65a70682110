"""The tables, as SQLAlchemy 2 typed ORM classes.

The migrations in ``migrations/versions`` create exactly this schema; a test compares the two with
Alembic's autogenerate so they cannot drift. Constraint names follow one naming convention so that
migrations can refer to them on both SQLite and PostgreSQL.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    column,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from anomaly.store import LABELS

MODEL_STATUSES = ("candidate", "active", "retired")
TRIGGERS = ("manual", "scheduled")
RUN_STATUSES = ("running", "succeeded", "failed")
RAW_HEAD_BYTES = 256
# The review list's condition, as the list query writes it: each dialect renders it its own way
# (``IS 1`` on SQLite, ``IS true`` on PostgreSQL) and a partial index is only used when its
# condition reads the same as the query's.
FLAGGED = column("is_anomaly").is_(True)

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# SQLite only auto-increments a column declared exactly INTEGER PRIMARY KEY.
BigId = BigInteger().with_variant(Integer(), "sqlite")


def utcnow() -> datetime:
    """Timezone-aware now in UTC: every timestamp in the store is UTC."""
    return datetime.now(timezone.utc)


class UtcDateTime(TypeDecorator[datetime]):
    """A timestamp stored in UTC and always read back timezone-aware.

    SQLite keeps no zone, so without this a value written aware would come back naive there and
    compare unequal to the same value read from PostgreSQL. Naive input is taken to be UTC.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return as_utc(value)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return as_utc(value)


def as_utc(value: datetime | None) -> datetime | None:
    """``value`` in UTC; a naive value is taken to be UTC already."""
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc)


def _one_of(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class Base(DeclarativeBase):
    # Every model here maps one plain table; DeclarativeBase types __table__ as any FROM clause.
    __table__: ClassVar[Table]
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {dict[str, Any]: JSON, datetime: UtcDateTime}


class Model(Base):
    """One trained version of a named model; at most one version per name is ``active``."""

    __tablename__ = "models"
    __table_args__ = (
        UniqueConstraint("name", "version"),
        CheckConstraint(_one_of("status", MODEL_STATUSES), name="status"),
        CheckConstraint("version >= 1", name="version_positive"),
        # The database, not the code, guarantees a single active version per name.
        Index(
            "uq_models_one_active_per_name",
            "name",
            unique=True,
            sqlite_where=text("status = 'active'"),
            postgresql_where=text("status = 'active'"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    detector: Mapped[str] = mapped_column(String(100))
    detector_version: Mapped[str | None] = mapped_column(String(50))
    version: Mapped[int] = mapped_column(Integer)
    artifact: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    manifest: Mapped[dict[str, Any]]
    metrics: Mapped[dict[str, Any] | None]
    threshold: Mapped[float] = mapped_column(Float)
    status: Mapped[str] = mapped_column(String(16))
    retired_at: Mapped[datetime | None]
    # Set when retention removed the folder of a retired version (anomaly.store.retention): it can never serve again.
    artifact_removed_at: Mapped[datetime | None]


class TrainingRun(Base):
    """One training attempt, successful or not, and what was decided about its model."""

    __tablename__ = "training_runs"
    __table_args__ = (
        CheckConstraint(_one_of("trigger", TRIGGERS), name="trigger"),
        CheckConstraint(_one_of("status", RUN_STATUSES), name="status"),
        Index(None, "model_name", "started_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_id: Mapped[int | None] = mapped_column(ForeignKey("models.id", ondelete="SET NULL"), index=True)
    model_name: Mapped[str] = mapped_column(String(200))
    trigger: Mapped[str] = mapped_column(String(16))
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
    status: Mapped[str] = mapped_column(String(16))
    data_summary: Mapped[dict[str, Any] | None]
    metrics: Mapped[dict[str, Any] | None]
    decision: Mapped[str | None] = mapped_column(String(32))
    reason: Mapped[str | None] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text)


class Event(Base):
    """One scored stream message; (topic, partition, offset) makes replays idempotent."""

    __tablename__ = "events"
    __table_args__ = (
        UniqueConstraint("topic", "partition", "offset"),
        CheckConstraint(_one_of("label", LABELS), name="label"),
        Index(None, "source", "is_anomaly", "received_at"),
        Index(None, "model_id", "received_at"),
        # Also retention's walk over old events, a batch at a time (migration 0003).
        Index(None, "received_at", "id"),
        # The review list filtered by label (``normal``, ``anomaly`` or none): flagged events only, so
        # a page is one range scan in the list's order however rare the label is. B-tree keeps NULLs,
        # so the unlabelled filter (``label IS NULL``) scans it too.
        Index(
            "ix_events_flagged_label_received_at_id",
            "label",
            "received_at",
            "id",
            sqlite_where=FLAGGED,
            postgresql_where=FLAGGED,
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    topic: Mapped[str] = mapped_column(String(255))
    partition: Mapped[int] = mapped_column(Integer)
    offset: Mapped[int] = mapped_column(BigInteger)
    key: Mapped[str | None] = mapped_column(Text)
    source: Mapped[str | None] = mapped_column(String(255))
    event_time: Mapped[datetime | None]
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    model_id: Mapped[int | None] = mapped_column(ForeignKey("models.id", ondelete="SET NULL"))
    score: Mapped[float] = mapped_column(Float)
    threshold: Mapped[float] = mapped_column(Float)
    components: Mapped[dict[str, Any] | None]
    is_anomaly: Mapped[bool] = mapped_column(Boolean)
    payload: Mapped[bytes | None] = mapped_column(LargeBinary)
    payload_content_type: Mapped[str | None] = mapped_column(String(100))
    label: Mapped[str | None] = mapped_column(String(16))
    labelled_at: Mapped[datetime | None]


class RejectedMessage(Base):
    """A stream message that could not be scored, with the head of its raw bytes for diagnosis."""

    __tablename__ = "rejected_messages"
    __table_args__ = (
        UniqueConstraint("topic", "partition", "offset"),
        Index(None, "rejected_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    topic: Mapped[str] = mapped_column(String(255))
    partition: Mapped[int] = mapped_column(Integer)
    offset: Mapped[int] = mapped_column(BigInteger)
    reason: Mapped[str] = mapped_column(Text)
    raw_head: Mapped[bytes | None] = mapped_column(LargeBinary)
    rejected_at: Mapped[datetime] = mapped_column(default=utcnow)
