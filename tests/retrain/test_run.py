"""One retrain job: every run is a row; a skip, a crash, a hang or a memory cap never touch the champion."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from anomaly.retrain import run
from anomaly.settings import RetrainConfig
from anomaly.store.registry import ModelRecord, active_model, list_models
from anomaly.store.schema import TrainingRun, utcnow
from tests.conftest import write_series
from tests.retrain.conftest import series_manifest


def _runs(engine: Engine) -> list[TrainingRun]:
    with Session(engine) as session:
        return list(session.scalars(select(TrainingRun).where(TrainingRun.trigger == "scheduled")))


def test_too_little_data_is_recorded_as_a_skip(engine: Engine, champion: ModelRecord) -> None:
    report = run.retrain("pump", trigger="scheduled", config=RetrainConfig(data="events"), engine=engine)

    assert (report.status, report.decision) == ("succeeded", "skipped")
    assert "fewer than the 32 retrain.min_items" in report.reason
    (row,) = _runs(engine)
    assert (row.status, row.decision, row.reason, row.model_id) == ("succeeded", "skipped", report.reason, None)
    assert row.finished_at is not None
    assert active_model("pump", engine=engine) == champion


@pytest.mark.parametrize(
    ("death", "reason"),
    [
        ("kill", "training process killed by SIGKILL (out of memory? the limit is 8192 MiB)"),
        ("hang", "killed at the time limit of 1 s"),
        ("exit", "training process exited with status 3 and no outcome"),
    ],
)
def test_a_dead_training_process_is_a_failed_run_and_the_champion_serves_on(
    engine: Engine, champion: ModelRecord, monkeypatch: pytest.MonkeyPatch, death: str, reason: str
) -> None:
    monkeypatch.setattr(run, "WORKER_MODULE", "tests.retrain.misbehaving_worker")
    monkeypatch.setenv("RETRAIN_TEST_DEATH", death)
    report = run.retrain("pump", trigger="scheduled", config=RetrainConfig(time_limit=1), engine=engine)

    assert (report.status, report.decision, report.reason) == ("failed", "failed", reason)
    (row,) = _runs(engine)
    assert (row.status, row.error) == ("failed", reason)
    assert active_model("pump", engine=engine) == champion


def test_a_run_left_running_past_the_time_limit_is_failed_by_the_next(
    engine: Engine, champion: ModelRecord, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(run, "WORKER_MODULE", "tests.retrain.misbehaving_worker")
    monkeypatch.setenv("RETRAIN_TEST_DEATH", "exit")
    with Session(engine) as session, session.begin():
        started = utcnow() - timedelta(seconds=120)
        session.add(TrainingRun(model_name="pump", trigger="scheduled", started_at=started, status="running"))
    run.retrain("pump", trigger="scheduled", config=RetrainConfig(time_limit=30), engine=engine)

    stale, latest = sorted(_runs(engine), key=lambda r: r.id)
    assert (stale.status, stale.error) == (
        "failed",
        "abandoned: the process running it ended before recording an outcome",
    )
    assert latest.status == "failed"


def test_a_worse_challenger_is_registered_but_rejected_with_its_reason_in_one_row(
    engine: Engine, champion: ModelRecord, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(run, "WORKER_MODULE", "tests.retrain.misbehaving_worker")
    monkeypatch.setenv("RETRAIN_TEST_DEATH", "worse")
    report = run.retrain("pump", trigger="scheduled", config=RetrainConfig(fpr_margin=0.01), engine=engine)

    assert (report.decision, report.challenger_version) == ("rejected", 2)
    assert report.reason == "FPR 0.400 vs 0.050: worse than the champion by more than the margin 0.01"
    (row,) = _runs(engine)  # the registry's own row for version 2 was folded into the run's
    assert (row.status, row.decision, row.reason) == ("succeeded", "rejected", report.reason)
    assert row.metrics == {"champion": report.metrics["champion"], "challenger": report.metrics["challenger"]}
    settings = RetrainConfig(fpr_margin=0.01).decisions()
    assert row.data_summary == {"train_items": 80, "evaluation_items": 20, "champion_version": 1, "settings": settings}
    assert active_model("pump", engine=engine) == champion
    assert [m.status for m in list_models("pump", engine=engine)] == ["candidate", "active"]


def test_the_memory_cap_fails_the_run_not_the_caller(
    engine: Engine, champion: ModelRecord, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """200 MiB of address space is too little to load TensorFlow: the worker fails, the scorer's process does not."""
    folder = Path(champion.artifact)
    series_manifest(str(write_series(tmp_path / "normal.csv", steps=100))).write(folder)
    config = RetrainConfig(data="source", min_items=10, memory_limit_mb=200)

    report = run.retrain("pump", trigger="scheduled", config=config, engine=engine)

    assert report.status == "failed"
    assert report.reason
    assert _runs(engine)[0].status == "failed"
    assert active_model("pump", engine=engine) == champion
