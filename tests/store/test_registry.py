"""The model registry: versions, one active model per name, promotions and rollbacks."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from anomaly.artifact import Manifest
from anomaly.errors import AnomalyError
from anomaly.store.registry import (
    active_model,
    list_models,
    promote,
    register_trained_model,
    rollback,
)
from anomaly.store.schema import Model, TrainingRun


def _statuses(engine: Engine, name: str = "tiles") -> dict[int, str]:
    return {m.version: m.status for m in list_models(name, engine=engine)}


def test_first_version_is_active_later_ones_candidates(engine: Engine, register: Callable, tmp_path: Path) -> None:
    first, second = register(count=2)
    assert (first.version, first.status) == (1, "active")
    assert (second.version, second.status) == (2, "candidate")
    assert first.detector == "ganomaly" and first.threshold == 0.42
    assert first.artifact == str(tmp_path.resolve())
    assert active_model("tiles", engine=engine) == first


def test_versions_count_per_name(engine: Engine, register: Callable) -> None:
    register(name="tiles", count=2)
    other = register(name="machines")[0]
    assert (other.version, other.status) == (1, "active")
    assert [(m.name, m.version) for m in list_models(engine=engine)] == [("machines", 1), ("tiles", 2), ("tiles", 1)]


def test_registration_records_a_training_run(engine: Engine, register: Callable) -> None:
    model = register(trigger="scheduled", data_summary={"rows": 1000})[0]
    with Session(engine) as session:
        run = session.scalars(select(TrainingRun)).one()
    assert run.model_id == model.id and run.model_name == "tiles"
    assert (run.trigger, run.status, run.decision) == ("scheduled", "succeeded", "active")
    assert run.data_summary == {"rows": 1000} and run.metrics == {"auroc": 0.71}
    assert run.started_at.isoformat() == "2026-11-26T10:00:00+00:00"
    assert run.finished_at.isoformat() == "2026-11-26T10:05:00+00:00"


def test_bad_registrations_are_user_errors(engine: Engine, tmp_path: Path, manifest: Manifest) -> None:
    with pytest.raises(AnomalyError, match="trigger must be one of"):
        register_trained_model("tiles", tmp_path, manifest, trigger="cron", engine=engine)
    with pytest.raises(AnomalyError, match="a model name cannot be empty"):
        register_trained_model(" ", tmp_path, manifest, engine=engine)
    assert list_models(engine=engine) == []


def test_registry_stores_the_manifest_as_json(engine: Engine, register: Callable, manifest: Manifest) -> None:
    register()
    with Session(engine) as session:
        stored = session.scalars(select(Model)).one().manifest
    assert Manifest.model_validate(stored) == manifest


def test_concurrent_registrations_get_distinct_versions(engine: Engine, register: Callable) -> None:
    threads = [threading.Thread(target=register, kwargs={"count": 4}) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    statuses = _statuses(engine)
    assert sorted(statuses) == list(range(1, 13))
    assert list(statuses.values()).count("active") == 1


def test_promote_makes_it_the_only_active_version(engine: Engine, register: Callable) -> None:
    register(count=3)
    promoted = promote("tiles", 3, engine=engine)
    assert promoted.status == "active"
    assert _statuses(engine) == {1: "retired", 2: "candidate", 3: "active"}
    assert promote("tiles", 3, engine=engine).status == "active"
    assert _statuses(engine) == {1: "retired", 2: "candidate", 3: "active"}


def test_promote_unknown_model_or_version(engine: Engine, register: Callable) -> None:
    with pytest.raises(AnomalyError, match="no model named 'ghost'"):
        promote("ghost", 1, engine=engine)
    register(count=2)
    with pytest.raises(AnomalyError, match=r"tiles has no version 7 \(versions: 1, 2\)"):
        promote("tiles", 7, engine=engine)


def test_rollback_reactivates_the_previously_active_version(engine: Engine, register: Callable) -> None:
    register(count=3)
    promote("tiles", 2, engine=engine)
    promote("tiles", 3, engine=engine)
    restored = rollback("tiles", engine=engine)
    assert (restored.version, restored.status) == (2, "active")
    assert _statuses(engine) == {1: "retired", 2: "active", 3: "retired"}
    assert rollback("tiles", engine=engine).version == 3


def test_rollback_without_history(engine: Engine, register: Callable) -> None:
    register()
    with pytest.raises(AnomalyError, match="no retired version"):
        rollback("tiles", engine=engine)
    with pytest.raises(AnomalyError, match="no model named 'ghost'"):
        rollback("ghost", engine=engine)


def test_database_refuses_two_active_versions(engine: Engine, register: Callable) -> None:
    register(count=2)
    with pytest.raises(IntegrityError), Session(engine) as session, session.begin():
        session.execute(update(Model).where(Model.version == 2).values(status="active"))
    assert _statuses(engine) == {1: "active", 2: "candidate"}


def test_racing_promotions_leave_one_active(engine: Engine, register: Callable) -> None:
    # On PostgreSQL this fails with a unique violation unless promote locks the name's rows first.
    register(count=5)
    for round_ in range(10):
        versions = [2 + round_ % 4, 2 + (round_ + 1) % 4]
        barrier = threading.Barrier(len(versions))
        failures: list[BaseException] = []

        def promote_after_barrier(version: int) -> None:
            barrier.wait()
            try:
                promote("tiles", version, engine=engine)
            except BaseException as exc:  # collected and asserted below
                failures.append(exc)

        threads = [threading.Thread(target=promote_after_barrier, args=(v,)) for v in versions]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert failures == []
        statuses = _statuses(engine)
        active = [v for v, s in statuses.items() if s == "active"]
        assert len(active) == 1 and active[0] in versions
