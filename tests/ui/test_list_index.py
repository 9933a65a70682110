"""The label filter of the review list reads the partial label index, on SQLite and PostgreSQL.

Without it the filter walks ``received_at`` back until it has a page of labelled rows: about 100,000
rows and 450 ms with a million events (docs/benchmarks.md, Review pages). A partial index whose
condition the query does not imply is silently never used, so the plan itself is checked here.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import event, text
from sqlalchemy.engine import Engine

from anomaly.store.engine import get_engine
from anomaly.store.queries import insert_events
from anomaly.ui import queries

INDEX = "ix_events_flagged_label_received_at_id"
START = datetime(2026, 12, 1, tzinfo=timezone.utc)


def _plan(engine: Engine, filters: queries.Filters, after: queries.Cursor | None = None) -> str:
    """The plan of the list query for ``filters`` (from ``after``), as the database explains it."""
    seen: list[tuple[str, Any]] = []

    def capture(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool) -> None:
        seen.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", capture)
    try:
        queries.flagged(engine, filters, after)
    finally:
        event.remove(engine, "before_cursor_execute", capture)
    (statement, parameters), *_ = (s for s in seen if "FROM events" in s[0])
    explain = "EXPLAIN QUERY PLAN " if engine.dialect.name == "sqlite" else "EXPLAIN "
    with engine.connect() as connection:
        rows = connection.exec_driver_sql(explain + statement, parameters).all()
    return "\n".join(str(tuple(row)) for row in rows)


@pytest.fixture
def engine(db_url: str) -> Engine:
    """2,000 events, every other one flagged, ten of the oldest flagged ones labelled; statistics fresh."""
    engine = get_engine(db_url)
    rows = [
        {
            "topic": "sensors",
            "partition": 0,
            "offset": i,
            "source": f"pump-{i % 7}",
            "received_at": START + timedelta(seconds=i),
            "score": 1.0,
            "threshold": 0.5,
            "is_anomaly": i % 2 == 0,
            "label": "normal" if i % 2 == 0 and i < 20 else None,
        }
        for i in range(2000)
    ]
    insert_events(engine, rows)
    with engine.connect() as connection:
        connection.execution_options(isolation_level="AUTOCOMMIT").execute(text("ANALYZE"))
    return engine


@pytest.mark.parametrize("label", ["normal", "anomaly"])
def test_a_label_filter_scans_the_label_index(engine: Engine, label: str) -> None:
    assert INDEX in _plan(engine, queries.Filters(label=label))


def test_the_label_index_pages_in_the_lists_order(engine: Engine) -> None:
    rows = queries.flagged(engine, queries.Filters(label="normal"), limit=4)
    cursor = queries.Cursor(rows[3].event.received_at, rows[3].event.id)
    rest = queries.flagged(engine, queries.Filters(label="normal"), cursor)
    stamps = [row.event.received_at for row in rows[:4] + rest]
    assert len(stamps) == 10 and stamps == sorted(stamps, reverse=True)
    assert INDEX in _plan(engine, queries.Filters(label="normal"), cursor)
