"""The stream's bulk write path and the operators' event queries, on both dialects."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from anomaly.errors import AnomalyError
from anomaly.store.queries import insert_events, insert_rejections, label_event, recent_events
from anomaly.store.schema import Event, RejectedMessage


def _events(offsets: range, *, topic: str = "readings", source: str = "press-1", anomaly_every: int = 4) -> list[dict]:
    return [
        {
            "topic": topic,
            "partition": offset % 2,
            "offset": offset,
            "key": f"k{offset}",
            "source": source,
            "event_time": datetime(2026, 11, 26, 12, 0, tzinfo=timezone.utc) + timedelta(seconds=offset),
            "score": offset / 100,
            "threshold": 0.5,
            "components": {"latent": offset / 10, "features": [0.1, 0.2]},
            "is_anomaly": offset % anomaly_every == 0,
        }
        for offset in offsets
    ]


def _count(engine: Engine, table: type) -> int:
    with Session(engine) as session:
        return session.scalar(select(func.count()).select_from(table))


def test_same_batch_twice_stores_each_message_once(engine: Engine) -> None:
    batch = _events(range(200))
    assert insert_events(engine, batch) == 200
    assert insert_events(engine, batch) == 0
    assert _count(engine, Event) == 200


def test_overlapping_batch_counts_only_new_rows(engine: Engine) -> None:
    insert_events(engine, _events(range(0, 100)))
    assert insert_events(engine, _events(range(50, 150))) == 50
    assert _count(engine, Event) == 150


def test_duplicates_inside_one_batch_become_one_row(engine: Engine) -> None:
    batch = _events(range(10))
    assert insert_events(engine, batch + batch[:3]) == 10
    assert _count(engine, Event) == 10


def test_empty_batch(engine: Engine) -> None:
    assert insert_events(engine, []) == 0


def test_batch_in_a_session_commits_with_the_session(engine: Engine) -> None:
    with Session(engine) as session:
        assert insert_events(session, _events(range(5))) == 5
        session.rollback()
    assert _count(engine, Event) == 0
    with Session(engine) as session:
        assert insert_events(session, _events(range(5))) == 5
        assert insert_events(session, _events(range(3, 8))) == 3
        session.commit()
    assert _count(engine, Event) == 8


def test_stored_values_round_trip(engine: Engine) -> None:
    row = _events(range(7, 8))[0] | {"payload": b"\x00\x01raw", "payload_content_type": "application/octet-stream"}
    naive_event_time = datetime(2026, 11, 26, 12, 0)
    insert_events(engine, [row | {"event_time": naive_event_time}])
    with Session(engine) as session:
        stored = session.scalars(select(Event)).one()
    assert (stored.topic, stored.partition, stored.offset, stored.key) == ("readings", 1, 7, "k7")
    assert stored.components == {"latent": 0.7, "features": [0.1, 0.2]}
    assert stored.payload == b"\x00\x01raw"
    assert stored.event_time == naive_event_time.replace(tzinfo=timezone.utc)
    assert stored.received_at.tzinfo is not None
    assert abs(stored.received_at - datetime.now(timezone.utc)) < timedelta(minutes=1)


def test_rejections_keep_the_first_256_bytes_once(engine: Engine) -> None:
    rejection = {"topic": "readings", "partition": 0, "offset": 9, "reason": "not JSON", "raw_head": b"x" * 1000}
    assert insert_rejections(engine, [rejection]) == 1
    assert insert_rejections(engine, [rejection, rejection | {"offset": 10}]) == 1
    with Session(engine) as session:
        stored = session.scalars(select(RejectedMessage).order_by(RejectedMessage.offset)).all()
    assert [r.offset for r in stored] == [9, 10]
    assert stored[0].raw_head == b"x" * 256
    assert stored[0].reason == "not JSON"


def test_recent_events_filters(engine: Engine) -> None:
    insert_events(engine, _events(range(0, 20), source="press-1"))
    insert_events(engine, _events(range(20, 30), source="press-2"))

    newest = recent_events(limit=5, engine=engine)
    assert len(newest) == 5
    assert [e.id for e in newest] == sorted((e.id for e in newest), reverse=True)

    anomalies = recent_events(anomalies_only=True, source="press-1", limit=100, engine=engine)
    assert {e.offset for e in anomalies} == {0, 4, 8, 12, 16}
    assert all(e.is_anomaly and e.source == "press-1" for e in anomalies)

    future = datetime.now(timezone.utc) + timedelta(hours=1)
    assert recent_events(since=future, engine=engine) == []
    assert len(recent_events(since=future - timedelta(days=1), limit=100, engine=engine)) == 30


def test_recent_events_rejects_a_useless_limit(engine: Engine) -> None:
    with pytest.raises(AnomalyError, match="at least 1"):
        recent_events(limit=0, engine=engine)


def test_label_event(engine: Engine) -> None:
    insert_events(engine, _events(range(3)))
    target = recent_events(limit=1, engine=engine)[0]
    labelled = label_event(target.id, "normal", engine=engine)
    assert labelled.label == "normal" and labelled.labelled_at is not None
    assert recent_events(limit=1, engine=engine)[0].label == "normal"
    assert label_event(target.id, "anomaly", engine=engine).label == "anomaly"


def test_label_event_errors(engine: Engine) -> None:
    with pytest.raises(AnomalyError, match="no event with id 424242"):
        label_event(424242, "normal", engine=engine)
    with pytest.raises(AnomalyError, match="label must be one of normal, anomaly"):
        label_event(1, "weird", engine=engine)
