"""The event queries the rest of the code needs: the stream's bulk writes and the operators' reads.

Writes are idempotent on (topic, partition, offset) through ``INSERT ... ON CONFLICT DO NOTHING`` on
both dialects, so a consumer that replays a batch after a crash never doubles a row, and the count
of new rows tells it how much of the batch was really new.

On PostgreSQL a batch is streamed with binary ``COPY`` straight into the table inside a savepoint.
When that hits a row already stored (a replay), the savepoint is rolled back and the batch goes
through a temporary staging table and one ``INSERT ... SELECT ... ON CONFLICT DO NOTHING``. A
multi-row ``INSERT ... VALUES ... ON CONFLICT`` is simpler but spends its time in the driver parsing
thousands of placeholders and reached only about 5,000 rows/s on two cores; the staging path alone
about 18,000; the direct COPY about 25,000 (docs/benchmarks.md).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import Column, MetaData, Table, desc, false, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Session

from anomaly.errors import AnomalyError
from anomaly.store.engine import get_engine
from anomaly.store.schema import LABELS, RAW_HEAD_BYTES, Event, RejectedMessage, UtcDateTime, as_utc, utcnow

_CONFLICT_COLUMNS = ["topic", "partition", "offset"]

# Optional columns of a scored event; rows may leave them out.
_EVENT_OPTIONAL = (
    "key",
    "source",
    "event_time",
    "model_id",
    "components",
    "payload",
    "payload_content_type",
)


@dataclass(frozen=True)
class EventRecord:
    """A stored event as operators see it (the payload stays in the database)."""

    id: int
    topic: str
    partition: int
    offset: int
    key: str | None
    source: str | None
    event_time: datetime | None
    received_at: datetime
    model_id: int | None
    score: float
    threshold: float
    is_anomaly: bool
    components: dict[str, Any] | None
    label: str | None
    labelled_at: datetime | None

    @classmethod
    def of(cls, event: Event) -> EventRecord:
        return cls(**{name: getattr(event, name) for name in cls.__dataclass_fields__})


@cache
def _staging(table: Table) -> Table:
    """A session-private copy of ``table``'s columns, emptied by PostgreSQL at every commit."""
    columns = [Column(c.name, c.type) for c in table.columns if not c.primary_key]
    return Table(
        f"{table.name}_staging",
        MetaData(),
        *columns,
        prefixes=["TEMPORARY"],
        postgresql_on_commit="DELETE ROWS",
    )


def _copy(connection: Connection, target: Table, columns: list[Column], rows: list[list[Any]]) -> None:
    from psycopg import sql  # PostgreSQL only: SQLite stores need no psycopg (the ``postgres`` extra)

    oids_key = f"copy_oids:{target.name}"
    if oids_key not in connection.info:
        probe = connection.execute(select(*(target.c[c.name] for c in columns)).where(false()))
        # PEP 249: each column description's second item is its type code (psycopg's: the type's OID).
        connection.info[oids_key] = [column[1] for column in probe.cursor.description]
        probe.close()
    statement = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(
        sql.Identifier(target.name), sql.SQL(", ").join(sql.Identifier(c.name) for c in columns)
    )
    driver = connection.connection.driver_connection
    assert driver is not None  # only an invalidated pool connection has none, and .connection reconnects those
    with driver.cursor() as cursor, cursor.copy(statement) as stream:
        stream.set_types(connection.info[oids_key])
        for row in rows:
            stream.write_row(row)


def _copy_insert(connection: Connection, table: Table, rows: list[dict[str, Any]]) -> int:
    from psycopg import errors

    columns = [c for c in table.columns if not c.primary_key]
    timestamps = [i for i, c in enumerate(columns) if isinstance(c.type, UtcDateTime)]
    values = [[row.get(c.name) for c in columns] for row in rows]
    for value in values:
        for i in timestamps:
            value[i] = as_utc(value[i])
    try:
        with connection.begin_nested():
            _copy(connection, table, columns, values)
        return len(values)
    except errors.UniqueViolation:
        pass  # some rows are stored already: go the slower way that skips them
    staging = _staging(table)
    if not connection.info.get(staging.name):
        staging.create(connection, checkfirst=True)
        connection.info[staging.name] = True
    _copy(connection, staging, columns, values)
    move = (
        postgresql.insert(table)
        .from_select([c.name for c in columns], select(*staging.columns))
        .on_conflict_do_nothing(index_elements=_CONFLICT_COLUMNS)
    )
    return connection.execute(move.execution_options(preserve_rowcount=True)).rowcount


def _insert_returning(connection: Connection, table: Table, rows: list[dict[str, Any]]) -> int:
    statement = sqlite.insert(table).on_conflict_do_nothing(index_elements=_CONFLICT_COLUMNS).returning(table.c.id)
    return len(connection.execute(statement, rows).all())


def _insert_new(target: Session | Engine | Connection, table: Table, rows: list[dict[str, Any]]) -> int:
    if not rows:
        return 0
    if isinstance(target, Engine):
        with target.begin() as connection:
            return _insert_new(connection, table, rows)
    connection = target.connection() if isinstance(target, Session) else target
    if connection.dialect.name == "postgresql":
        return _copy_insert(connection, table, rows)
    if connection.dialect.name == "sqlite":
        return _insert_returning(connection, table, rows)
    raise AnomalyError(f"the store supports SQLite and PostgreSQL, not {connection.dialect.name}")


def insert_events(target: Session | Engine | Connection, rows: Iterable[Mapping[str, Any]]) -> int:
    """Store a batch of scored events in one transaction; return how many were not stored before.

    Each row needs topic, partition, offset, score, threshold and is_anomaly; the other columns are
    optional (``received_at`` defaults to now). Given an Engine the batch commits here; given a
    Session or Connection it joins the caller's transaction, which the caller commits (so the batch
    can commit together with other bookkeeping).
    """
    now = utcnow()
    batch = [{**dict.fromkeys(_EVENT_OPTIONAL), "received_at": now, **row} for row in rows]
    return _insert_new(target, Event.__table__, batch)


def insert_rejections(target: Session | Engine | Connection, rows: Iterable[Mapping[str, Any]]) -> int:
    """Store messages that could not be scored; same transaction rules and return as ``insert_events``.

    Each row needs topic, partition, offset and reason; ``raw_head`` may be the whole raw message,
    only its first 256 bytes are kept.
    """
    now = utcnow()
    batch = []
    for row in rows:
        raw = row.get("raw_head")
        batch.append({"rejected_at": now, **row, "raw_head": raw[:RAW_HEAD_BYTES] if raw is not None else None})
    return _insert_new(target, RejectedMessage.__table__, batch)


def append_rejection_reason(connection: Connection, topic: str, partition: int, offset: int, note: str) -> None:
    """Add ``note`` to a stored rejection's reason: what happened to the message after it was rejected."""
    table = RejectedMessage.__table__
    connection.execute(
        update(table)
        .where(table.c.topic == topic, table.c.partition == partition, table.c.offset == offset)
        .values(reason=table.c.reason + "; " + note)
    )


def recent_events(
    anomalies_only: bool = False,
    since: datetime | None = None,
    source: str | None = None,
    limit: int = 50,
    *,
    engine: Engine | None = None,
) -> list[EventRecord]:
    """The newest events first, optionally only anomalies, only from one source, only after ``since``."""
    if limit < 1:
        raise AnomalyError(f"limit must be at least 1, not {limit}")
    query = select(Event).order_by(desc(Event.received_at), desc(Event.id)).limit(limit)
    if anomalies_only:
        query = query.where(Event.is_anomaly.is_(True))
    if since is not None:
        query = query.where(Event.received_at >= since)
    if source is not None:
        query = query.where(Event.source == source)
    with Session(engine or get_engine()) as session:
        return [EventRecord.of(event) for event in session.scalars(query)]


def label_event(event_id: int, label: str, *, engine: Engine | None = None) -> EventRecord:
    """Record an operator's verdict (``normal`` or ``anomaly``) on an event, for review and retraining."""
    if label not in LABELS:
        raise AnomalyError(f"label must be one of {', '.join(LABELS)}, not {label!r}")
    with Session(engine or get_engine(), expire_on_commit=False) as session, session.begin():
        event = session.scalars(
            update(Event).where(Event.id == event_id).values(label=label, labelled_at=utcnow()).returning(Event)
        ).one_or_none()
        if event is None:
            raise AnomalyError(f"no event with id {event_id}")
        return EventRecord.of(event)
