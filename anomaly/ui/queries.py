"""The review page's reads: flagged events a page at a time, one event, its neighbours, a model's history.

The list is paged by keyset (the last row's ``received_at`` and ``id``), not by offset: with a million
events an ``OFFSET`` makes every later page scan all the rows before it, while a keyset page is one
index range scan on ``(received_at, id)`` wherever it starts.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, desc, or_, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from anomaly.store.queries import EventRecord
from anomaly.store.schema import Event, Model, TrainingRun

PAGE_SIZE = 50
# How many of a model's newest events its score histogram shows: enough for a shape, one index scan.
HISTOGRAM_EVENTS = 5000
# How many events of the same source either side of a sensor event its plot shows.
NEIGHBOURS_BEFORE = 63
NEIGHBOURS_AFTER = 16


@dataclass(frozen=True)
class Filters:
    """What the list is narrowed to; None means any. ``label`` is ``normal``, ``anomaly`` or ``none``."""

    source: str | None = None
    model: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    label: str | None = None


@dataclass(frozen=True)
class Cursor:
    """Where the next page starts: just after this row in newest-first order."""

    received_at: datetime
    id: int


@dataclass(frozen=True)
class Row:
    """One line of the list: the event and the name and version of the model that scored it."""

    event: EventRecord
    model: str | None
    version: int | None


def flagged(engine: Engine, filters: Filters, after: Cursor | None = None, limit: int = PAGE_SIZE) -> list[Row]:
    """Events scored as anomalies, newest first, ``limit + 1`` of them so the caller knows whether more follow."""
    query = (
        select(Event, Model.name, Model.version)
        .outerjoin(Model, Event.model_id == Model.id)
        .where(Event.is_anomaly.is_(True))
        .order_by(desc(Event.received_at), desc(Event.id))
        .limit(limit + 1)
    )
    if filters.source is not None:
        query = query.where(Event.source == filters.source)
    if filters.model is not None:
        query = query.where(Event.model_id.in_(select(Model.id).where(Model.name == filters.model)))
    if filters.since is not None:
        query = query.where(Event.received_at >= filters.since)
    if filters.until is not None:
        query = query.where(Event.received_at < filters.until)
    if filters.label == "none":
        query = query.where(Event.label.is_(None))
    elif filters.label is not None:
        query = query.where(Event.label == filters.label)
    if after is not None:
        # The redundant first bound lets PostgreSQL start the index scan at the cursor; the OR alone would not.
        query = query.where(
            Event.received_at <= after.received_at,
            or_(
                Event.received_at < after.received_at,
                and_(Event.received_at == after.received_at, Event.id < after.id),
            ),
        )
    with Session(engine) as session:
        return [Row(EventRecord.of(event), name, version) for event, name, version in session.execute(query)]


@dataclass(frozen=True)
class Detail:
    """One event with its stored payload and the model version that scored it (None if since deleted)."""

    event: EventRecord
    payload: bytes | None
    content_type: str | None
    model: Model | None


def event_detail(engine: Engine, event_id: int) -> Detail | None:
    with Session(engine, expire_on_commit=False) as session:
        event = session.get(Event, event_id)
        if event is None:
            return None
        model = session.get(Model, event.model_id) if event.model_id is not None else None
        if model is not None:
            session.expunge(model)
        return Detail(EventRecord.of(event), event.payload, event.payload_content_type, model)


def neighbours(engine: Engine, event: EventRecord) -> list[tuple[EventRecord, bytes | None]]:
    """The events of the same source and model around ``event`` (it included), oldest first, with payloads."""
    same = and_(Event.source == event.source, Event.model_id == event.model_id)
    key = (Event.received_at, Event.id)
    before = (
        select(Event)
        .where(
            same,
            key[0] <= event.received_at,  # redundant, but lets the index scan start at the event (see flagged)
            or_(key[0] < event.received_at, and_(key[0] == event.received_at, key[1] <= event.id)),
        )
        .order_by(desc(key[0]), desc(key[1]))
        .limit(NEIGHBOURS_BEFORE + 1)
    )
    after = (
        select(Event)
        .where(
            same,
            key[0] >= event.received_at,
            or_(key[0] > event.received_at, and_(key[0] == event.received_at, key[1] > event.id)),
        )
        .order_by(*key)
        .limit(NEIGHBOURS_AFTER)
    )
    with Session(engine) as session:
        rows = list(reversed(session.scalars(before).all())) + list(session.scalars(after).all())
        return [(EventRecord.of(row), row.payload) for row in rows]


@dataclass(frozen=True)
class History:
    """A model name's versions (newest first), its training runs (newest first) and recent scores."""

    versions: list[Model]
    runs: list[TrainingRun]
    scores: list[float]


def model_history(engine: Engine, name: str) -> History:
    with Session(engine, expire_on_commit=False) as session:
        versions = list(session.scalars(select(Model).where(Model.name == name).order_by(desc(Model.version))))
        runs = list(
            session.scalars(
                select(TrainingRun).where(TrainingRun.model_name == name).order_by(desc(TrainingRun.started_at))
            )
        )
        session.expunge_all()
    return History(versions, runs, model_scores(engine, [v.id for v in versions]))


def model_scores(engine: Engine, model_ids: list[int]) -> list[float]:
    """The scores of the newest events these model versions scored (at most ``HISTOGRAM_EVENTS``)."""
    if not model_ids:
        return []
    query = (
        select(Event.score)
        .where(Event.model_id.in_(model_ids))
        .order_by(desc(Event.received_at))
        .limit(HISTOGRAM_EVENTS)
    )
    with Session(engine) as session:
        return list(session.scalars(query))


def model_names(engine: Engine) -> list[str]:
    with Session(engine) as session:
        return list(session.scalars(select(Model.name).distinct().order_by(Model.name)))
