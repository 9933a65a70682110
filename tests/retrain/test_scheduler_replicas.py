"""Two ``anomaly scheduler`` processes against one PostgreSQL: one retrain per trigger, and a handover on SIGKILL.

The model has no stored events, so each retrain is a recorded skip: a real run (its own row, its own
training process) that takes seconds. Each replica's log says when it took the schedule and which
retrains it ran, so the test knows which one to kill and who ran what.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from anomaly.retrain import schedule
from anomaly.store.engine import get_engine
from anomaly.store.registry import register_trained_model
from anomaly.store.schema import TrainingRun
from tests.retrain.conftest import series_manifest
from tests.stream.support import wait_until

pytestmark = [pytest.mark.postgres, pytest.mark.slow, pytest.mark.timeout(300)]

LEADER = "this process runs the retrain schedule"
RAN = "scheduled retrain of pump: skipped"


def _finished_runs(url: str) -> list[TrainingRun]:
    """The scheduled retrains that recorded an outcome (registering the champion wrote a row of its own)."""
    with Session(get_engine(url)) as session:
        return list(
            session.scalars(
                select(TrainingRun).where(TrainingRun.trigger == "scheduled", TrainingRun.status != "running")
            )
        )


def _make_due(url: str) -> None:
    """Move the schedule's next time to now, as if the hour had passed."""
    store = schedule._store(get_engine(url))
    try:
        store.modify_job("retrain:pump", next_run_time=datetime.now(timezone.utc))
    finally:
        store.shutdown(wait=False)


def test_two_scheduler_replicas_run_each_trigger_once_and_hand_over_when_the_holder_is_killed(
    pg_db: str, tmp_path: Path
) -> None:
    engine = get_engine(pg_db)
    folder = tmp_path / "pump-1"
    folder.mkdir()
    series_manifest().write(folder)
    register_trained_model("pump", folder, series_manifest(), engine=engine)
    schedule.add_schedule("pump", schedule.trigger_for("1h", None), engine=engine)
    _make_due(pg_db)
    env = {**os.environ, "ANOMALY_DATABASE_URL": pg_db, "ANOMALY_RETRAIN_DATA": "events"}
    logs = [tmp_path / "a.log", tmp_path / "b.log"]
    outputs = [log.open("w") for log in logs]
    replicas = [
        subprocess.Popen(
            [sys.executable, "-m", "anomaly", "scheduler", "--poll", "0.5"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=output,
        )
        for output in outputs
    ]

    def said(i: int, line: str) -> int:
        return logs[i].read_text().count(line)

    try:
        wait_until(lambda: len(_finished_runs(pg_db)) == 1, 120, "the first trigger's retrain", every_s=0.5)
        holders = [i for i in (0, 1) if said(i, LEADER)]
        assert len(holders) == 1, [log.read_text() for log in logs]
        holder, other = holders[0], 1 - holders[0]
        wait_until(lambda: said(holder, RAN) == 1, 10, "the holder's log of its retrain")
        time.sleep(3)  # six leadership checks: the other replica neither takes the schedule nor runs the trigger
        assert len(_finished_runs(pg_db)) == 1 and said(other, RAN) == 0 and said(other, LEADER) == 0
        _make_due(pg_db)  # the holder's scheduler sleeps until the time it knows, an hour on, and is killed first
        replicas[holder].send_signal(signal.SIGKILL)
        replicas[holder].wait(10)
        wait_until(lambda: len(_finished_runs(pg_db)) == 2, 120, "the next trigger's retrain", every_s=0.5)
        wait_until(lambda: said(other, RAN) == 1, 10, "the other replica's log of its retrain")
        assert said(other, LEADER) == 1
    finally:
        for replica in replicas:
            replica.send_signal(signal.SIGTERM)
        for replica, output in zip(replicas, outputs):
            replica.wait(30)
            output.close()
    runs = sorted(_finished_runs(pg_db), key=lambda r: r.id)
    assert [(r.trigger, r.decision) for r in runs] == [("scheduled", "skipped")] * 2
    assert "fewer than the 32 retrain.min_items" in (runs[1].reason or "")
    assert said(holder, RAN) == 1
