"""Schedules: kept in the database across restarts, a missed run run once, one scheduling process on PostgreSQL."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

import pytest
from alembic import command
from sqlalchemy import MetaData, Table
from sqlalchemy.engine import Engine

from anomaly.errors import AnomalyError
from anomaly.retrain import run, schedule
from anomaly.store import migrate
from anomaly.store.engine import get_engine
from anomaly.store.registry import ModelRecord


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    """The test database; APScheduler's table is dropped afterwards, since the PostgreSQL one is shared."""
    engine = get_engine(db_url)
    yield engine
    Table(schedule.JOB_TABLE, MetaData()).drop(engine, checkfirst=True)


def test_every_and_cron_are_parsed_and_bad_ones_are_one_line() -> None:
    assert str(schedule.trigger_for("6h", None)) == "interval[6:00:00]"
    assert "hour='3'" in str(schedule.trigger_for(None, "0 3 * * *"))
    with pytest.raises(AnomalyError, match="not both or neither"):
        schedule.trigger_for("6h", "0 3 * * *")
    with pytest.raises(AnomalyError, match="not '0h'"):
        schedule.trigger_for("0h", None)
    with pytest.raises(AnomalyError, match="--cron '0 3': Wrong number of fields"):
        schedule.trigger_for(None, "0 3")


def test_a_schedule_is_set_listed_replaced_and_removed(engine: Engine, champion: ModelRecord, db_url: str) -> None:
    schedule.add_schedule("pump", schedule.trigger_for("6h", None), engine=engine)
    schedule.add_schedule("pump", schedule.trigger_for(None, "0 3 * * *"), engine=engine)
    (entry,) = schedule.list_schedules(engine=engine)
    assert entry.name == "pump" and entry.trigger.startswith("cron[")
    assert entry.next_run is not None and (entry.next_run.hour, entry.next_run.minute) == (3, 0)
    # The job store's table is APScheduler's, not ours: the migrations still match the ORM beside it.
    command.check(migrate.alembic_config(db_url))
    schedule.remove_schedule("pump", engine=engine)
    assert schedule.list_schedules(engine=engine) == []
    with pytest.raises(AnomalyError, match="pump has no retrain schedule"):
        schedule.remove_schedule("pump", engine=engine)


def test_only_a_name_with_an_active_version_can_be_scheduled(engine: Engine) -> None:
    with pytest.raises(AnomalyError, match="no active version of 'pump'"):
        schedule.add_schedule("pump", schedule.trigger_for("1h", None), engine=engine)


def _run_for(seconds: float, engine: Engine) -> None:
    stop = threading.Event()
    runner = threading.Thread(target=schedule.run_scheduler, args=(stop,), kwargs={"poll": 0.1, "engine": engine})
    runner.start()
    time.sleep(seconds)
    stop.set()
    runner.join(10)


def test_a_restart_keeps_the_schedule_and_runs_missed_times_once(
    engine: Engine, champion: ModelRecord, monkeypatch: pytest.MonkeyPatch
) -> None:
    runs: list[str] = []
    monkeypatch.setattr(run, "retrain", lambda name, trigger: runs.append(f"{name} {trigger}") or _Report())
    schedule.add_schedule("pump", schedule.trigger_for("10s", None), engine=engine)
    # As if the service had been down for a minute: six due times passed, all within the grace time.
    paused = schedule._store(engine)
    paused.modify_job("retrain:pump", next_run_time=datetime.now(timezone.utc) - timedelta(seconds=55))
    paused.shutdown(wait=False)

    _run_for(2.0, engine)
    assert runs == ["pump scheduled"]
    _run_for(2.0, engine)  # restarted again before the next due time: nothing runs twice
    assert runs == ["pump scheduled"]
    (entry,) = schedule.list_schedules(engine=engine)
    assert entry.next_run is not None and entry.next_run > datetime.now(timezone.utc)


class _Report:
    decision = reason = "stub"


_CONTENDER = """
import sys, threading, time
from anomaly.retrain.schedule import Leadership
from anomaly.store.engine import create_engine_for
leadership = Leadership(create_engine_for(sys.argv[1]))
while not leadership.acquire():
    time.sleep(0.1)
print("leader", flush=True)
time.sleep(60)
"""


@pytest.mark.postgres
def test_one_process_holds_the_schedule_and_another_takes_over_when_it_dies(pg_db: str) -> None:
    started: list[subprocess.Popen[str]] = []

    def contender() -> subprocess.Popen[str]:
        started.append(subprocess.Popen([sys.executable, "-c", _CONTENDER, pg_db], stdout=subprocess.PIPE, text=True))
        return started[-1]

    try:
        first = contender()
        assert first.stdout is not None and first.stdout.readline() == "leader\n"
        second = contender()
        time.sleep(4)  # the second starts and keeps trying meanwhile, and must not get the lock
        assert second.poll() is None
        first.kill()
        first.wait()
        handover = time.monotonic()
        assert second.stdout is not None and second.stdout.readline() == "leader\n"
        assert time.monotonic() - handover < 10
    finally:
        for process in started:
            process.kill()
            process.wait()
