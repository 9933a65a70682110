"""Retention: old payloads cleared (events kept), old retired model folders removed, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import MetaData, Table, inspect, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from anomaly.artifact import Manifest
from anomaly.cli import cli
from anomaly.errors import AnomalyError
from anomaly.retrain import schedule
from anomaly.settings import RetentionConfig
from anomaly.store import migrate, registry, retention
from anomaly.store.config import URL_ENV
from anomaly.store.engine import create_engine_for
from anomaly.store.queries import insert_events
from anomaly.store.schema import Event, Model, utcnow

NOW = utcnow()
PAYLOAD = b"\x89PNG-bytes"
INDEX_0002, INDEX_0003 = "ix_events_received_at", "ix_events_received_at_id"


def _events(engine: Engine) -> None:
    """Five old events (one labelled normal, one labelled anomaly, one already without payload) and two new."""
    old, new = NOW - timedelta(days=40), NOW - timedelta(days=2)
    rows = [
        {"offset": 0, "received_at": old, "payload": PAYLOAD},
        {"offset": 1, "received_at": old, "payload": PAYLOAD},
        {"offset": 2, "received_at": old + timedelta(hours=1), "payload": PAYLOAD, "label": "normal"},
        {"offset": 3, "received_at": old + timedelta(hours=2), "payload": PAYLOAD, "label": "anomaly"},
        {"offset": 4, "received_at": old + timedelta(hours=3), "payload": None},
        {"offset": 5, "received_at": new, "payload": PAYLOAD},
        {"offset": 6, "received_at": new, "payload": PAYLOAD},
    ]
    common = {"topic": "parts", "partition": 0, "score": 0.7, "threshold": 0.5, "is_anomaly": True, "label": None}
    insert_events(
        engine,
        [{**common, "components": {"latent": 0.1}, "payload_content_type": "image/png", **row} for row in rows],
    )


def _stored(engine: Engine) -> dict[int, tuple]:
    with Session(engine) as session:
        return {
            e.offset: (e.payload, e.payload_content_type, e.score, e.components, e.label)
            for e in session.scalars(select(Event))
        }


@pytest.mark.parametrize("batch_size", [1, 1000])
def test_old_payloads_are_cleared_in_batches_and_newer_and_labelled_kept(engine: Engine, batch_size: int) -> None:
    _events(engine)
    before = _stored(engine)
    # Batches of one walk the index across rows sharing a received_at (offsets 0 and 1).
    config = RetentionConfig(payload_days=30, keep_versions=0, batch_size=batch_size)

    dry = retention.run(config, dry_run=True, engine=engine, now=NOW)
    assert (dry.payloads.cleared, dry.payloads.cleared_bytes, dry.payloads.kept_labelled) == (2, 2 * len(PAYLOAD), 2)
    assert _stored(engine) == before

    report = retention.run(config, engine=engine, now=NOW)
    assert (report.payloads.cleared, report.payloads.kept_labelled) == (2, 2)
    after = _stored(engine)
    assert set(after) == set(before)  # every event kept, with its score, components and label
    assert {offset: row[2:] for offset, row in after.items()} == {offset: row[2:] for offset, row in before.items()}
    assert [offset for offset, row in sorted(after.items()) if row[0] is None] == [0, 1, 4]
    assert after[0][1] is None and after[2][:2] == (PAYLOAD, "image/png")
    assert retention.run(config, engine=engine, now=NOW).payloads.cleared == 0


def test_labelled_payloads_go_too_when_told_and_zero_days_keeps_all(engine: Engine) -> None:
    _events(engine)
    kept = retention.run(RetentionConfig(payload_days=0, keep_versions=0), engine=engine, now=NOW)
    assert kept.payloads.cutoff is None and sum(row[0] is None for row in _stored(engine).values()) == 1
    config = RetentionConfig(payload_days=30, keep_labelled=False, keep_versions=0)
    report = retention.run(config, engine=engine, now=NOW)
    assert (report.payloads.cleared, report.payloads.kept_labelled) == (4, 0)
    assert [offset for offset, row in sorted(_stored(engine).items()) if row[0] is not None] == [5, 6]


def _versions(engine: Engine, tmp_path: Path, manifest: Manifest, count: int) -> list[Path]:
    """``count`` versions of ``tiles``, each in its own model folder; each promoted in turn but the last."""
    folders = []
    for number in range(1, count + 1):
        folder = tmp_path / f"tiles-{number}"
        folder.mkdir()
        manifest.write(folder)
        (folder / "weights.bin").write_bytes(b"w" * 4096)
        folders.append(folder)
        registry.register_trained_model("tiles", folder, manifest, engine=engine)
    for number in range(2, count):
        registry.promote("tiles", number, engine=engine)
    return folders


def _model(engine: Engine, version: int) -> Model:
    with Session(engine) as session:
        return session.scalars(select(Model).where(Model.name == "tiles", Model.version == version)).one()


def test_retired_versions_beyond_the_kept_ones_lose_their_folders_and_are_marked(
    engine: Engine, db_url: str, tmp_path: Path, manifest: Manifest
) -> None:
    # Versions 1-3 retired (3 most recently), 4 active, 5 a candidate.
    folders = _versions(engine, tmp_path, manifest, 5)
    shared = tmp_path / "tiles-3" / "nested"  # another name registered inside version 3's folder
    shared.mkdir()
    manifest.write(shared)
    registry.register_trained_model("pressed", shared, manifest, engine=engine)
    config = RetentionConfig(payload_days=0, keep_versions=1)

    dry = retention.run(config, dry_run=True, engine=engine, now=NOW)
    assert [(v.version, v.outcome) for v in dry.versions] == [(1, "would remove"), (2, "would remove")]
    assert all(folder.is_dir() for folder in folders) and _model(engine, 1).artifact_removed_at is None

    report = retention.run(config, engine=engine, now=NOW)
    assert [(v.name, v.version, v.outcome) for v in report.versions] == [
        ("tiles", 1, "removed"),
        ("tiles", 2, "removed"),
    ]
    assert report.versions[0].folder_bytes > 4096
    assert [folder.is_dir() for folder in folders] == [False, False, True, True, True]
    assert [_model(engine, v).artifact_removed_at is not None for v in range(1, 6)] == [True, True, False, False, False]
    assert [_model(engine, v).status for v in range(1, 6)] == ["retired", "retired", "retired", "active", "candidate"]
    assert retention.run(config, engine=engine, now=NOW).versions == []

    with pytest.raises(AnomalyError, match=r"tiles version 1 cannot serve again: retention removed its folder on"):
        registry.promote("tiles", 1, engine=engine)
    # Keeping none of the retired ones but version 3 would delete the folder "pressed" is served from.
    registry.promote("tiles", 5, engine=engine)  # 4 retired now, most recently
    wider = retention.run(RetentionConfig(payload_days=0, keep_versions=1), engine=engine, now=NOW)
    assert [(v.version, v.outcome) for v in wider.versions] == [(3, "left: folder shared with pressed version 1")]
    assert folders[2].is_dir() and (shared / "manifest.json").is_file()

    result = _run(db_url, "models")
    assert result.exit_code == 0 and "retired, removed" in result.output
    assert registry.rollback("tiles", engine=engine).version == 4


def test_rolling_back_to_a_removed_version_is_one_line(engine: Engine, tmp_path: Path, manifest: Manifest) -> None:
    _versions(engine, tmp_path, manifest, 3)  # 1 retired, 2 active
    with Session(engine) as session, session.begin():
        session.get_one(Model, _model(engine, 1).id).artifact_removed_at = NOW
    with pytest.raises(AnomalyError, match="tiles version 1 cannot serve again"):
        registry.rollback("tiles", engine=engine)


def _run(url: str, *args: str, **env: str) -> Result:
    return CliRunner().invoke(cli, list(args), env={URL_ENV: url, "COLUMNS": "200", **env})


def test_db_prune_prints_one_screen_and_dry_run_changes_nothing(
    engine: Engine, db_url: str, tmp_path: Path, manifest: Manifest
) -> None:
    _events(engine)
    _versions(engine, tmp_path, manifest, 4)
    before = _stored(engine)
    dry = _run(db_url, "db", "prune", "--dry-run", ANOMALY_RETENTION_KEEP_VERSIONS="1")
    assert dry.exit_code == 0, dry.output
    assert "dry run: nothing changed" in dry.output and "payloads to clear" in dry.output
    assert "tiles version 1" in dry.output and "would remove" in dry.output
    assert len(dry.output.splitlines()) < 25
    assert _stored(engine) == before and (tmp_path / "tiles-1").is_dir()

    done = _run(db_url, "db", "prune", "--json", ANOMALY_RETENTION_KEEP_VERSIONS="1")
    assert done.exit_code == 0, done.output
    assert '"cleared": 2' in done.output and '"outcome": "removed"' in done.output
    assert not (tmp_path / "tiles-1").exists()


def test_the_scheduler_keeps_one_retention_job_in_step_with_the_configuration(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = schedule._store(engine)
    try:
        schedule.retention_job(store)
        first = store.get_job(schedule.RETENTION_JOB)
        assert str(first.trigger) == "interval[1 day, 0:00:00]" and first.misfire_grace_time is None
        schedule.retention_job(store)  # a new leader with the same settings keeps the next run time
        assert store.get_job(schedule.RETENTION_JOB).next_run_time == first.next_run_time
        monkeypatch.setenv("ANOMALY_RETENTION_EVERY", "6h")
        schedule.retention_job(store)
        assert str(store.get_job(schedule.RETENTION_JOB).trigger) == "interval[6:00:00]"
        assert schedule.list_schedules(engine=engine) == []  # not a retrain schedule
        monkeypatch.setenv("ANOMALY_RETENTION_PAYLOAD_DAYS", "0")
        monkeypatch.setenv("ANOMALY_RETENTION_KEEP_VERSIONS", "0")
        schedule.retention_job(store)
        assert store.get_job(schedule.RETENTION_JOB) is None
    finally:
        store.shutdown(wait=False)
        Table(schedule.JOB_TABLE, MetaData()).drop(engine, checkfirst=True)  # the PostgreSQL test database is shared


def test_migration_0003_adds_and_drops_the_removed_column_and_the_wider_index(blank_url: str) -> None:
    def columns() -> set[str]:
        engine = create_engine_for(blank_url)
        try:
            found = inspect(engine)
            indexes = {index["name"] for index in found.get_indexes("events")} & {INDEX_0002, INDEX_0003}
            return {column["name"] for column in found.get_columns("models")} | indexes
        finally:
            engine.dispose()

    migrate.upgrade("0002", url=blank_url)
    assert "artifact_removed_at" not in columns() and INDEX_0002 in columns()
    migrate.upgrade(url=blank_url)
    assert {"artifact_removed_at", INDEX_0003} <= columns() and INDEX_0002 not in columns()
    migrate.downgrade("0002", url=blank_url)
    assert "artifact_removed_at" not in columns() and INDEX_0002 in columns() and INDEX_0003 not in columns()
    assert migrate.current(blank_url) == "0002"
