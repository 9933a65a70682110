"""Alembic migrations: round trips, no drift from the ORM, and the refusal to run on an old schema."""

from __future__ import annotations

import pytest
from alembic import command
from sqlalchemy import JSON, Column, MetaData, String, Table, inspect, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from anomaly.errors import AnomalyError
from anomaly.store import migrate
from anomaly.store.engine import create_engine_for, ensure_current, get_engine
from anomaly.store.schema import Base, TrainingRun, utcnow

TABLES = {"models", "training_runs", "events", "rejected_messages"}


def _tables(url: str) -> set[str]:
    engine = create_engine_for(url)
    try:
        return set(inspect(engine).get_table_names()) - {"alembic_version"}
    finally:
        engine.dispose()


def test_upgrade_downgrade_upgrade(blank_url: str) -> None:
    migrate.upgrade(url=blank_url)
    assert _tables(blank_url) == TABLES
    assert migrate.current(blank_url) == migrate.head_revision()

    migrate.downgrade("base", url=blank_url)
    assert _tables(blank_url) == set()
    assert migrate.current(blank_url) is None

    migrate.upgrade(url=blank_url)
    assert _tables(blank_url) == TABLES
    assert migrate.current(blank_url) == migrate.head_revision()


def test_orm_and_migrations_do_not_drift(db_url: str) -> None:
    # `alembic check` runs autogenerate through migrations/env.py and raises on any difference.
    command.check(migrate.alembic_config(db_url))


def test_apscheduler_table_is_not_ours_to_migrate(db_url: str) -> None:
    engine = create_engine_for(db_url)
    jobs = Table("apscheduler_jobs", MetaData(), Column("id", String(191), primary_key=True), Column("state", JSON))
    jobs.create(engine)
    try:
        command.check(migrate.alembic_config(db_url))
    finally:
        jobs.drop(engine)
        engine.dispose()


def test_refuses_a_database_without_schema(blank_url: str) -> None:
    with pytest.raises(AnomalyError, match="no anomaly schema yet: run `anomaly db upgrade`"):
        get_engine(blank_url)


def test_refuses_a_database_behind_head(blank_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    migrate.upgrade(url=blank_url)
    # Pretend this code ships a newer migration than the one the database is at.
    monkeypatch.setattr(migrate, "head_revision", lambda: "9999")
    engine = create_engine_for(blank_url)
    try:
        with pytest.raises(AnomalyError, match=r"at revision 0003, behind 9999: run `anomaly db upgrade`"):
            ensure_current(engine)
    finally:
        engine.dispose()


def test_refuses_a_database_migrated_by_newer_code(blank_url: str) -> None:
    migrate.upgrade(url=blank_url)
    engine = create_engine_for(blank_url)
    try:
        version = Table("alembic_version", MetaData(), autoload_with=engine)
        with engine.begin() as connection:
            connection.execute(update(version).values(version_num="9999future"))
        with pytest.raises(AnomalyError, match="9999future, which this version of anomaly does not know"):
            ensure_current(engine)
    finally:
        engine.dispose()


def test_unknown_target_revision_is_a_user_error(blank_url: str) -> None:
    with pytest.raises(AnomalyError, match="cannot upgrade to 'nonsense'"):
        migrate.upgrade("nonsense", url=blank_url)


def test_metadata_names_every_table() -> None:
    assert set(Base.metadata.tables) == TABLES


def test_foreign_keys_are_enforced(db_url: str) -> None:
    # SQLite ignores foreign keys unless the engine turns them on per connection.
    run = TrainingRun(model_id=12345, model_name="x", trigger="manual", started_at=utcnow(), status="running")
    with pytest.raises(IntegrityError), Session(get_engine(db_url)) as session, session.begin():
        session.add(run)
