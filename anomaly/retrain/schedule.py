"""Scheduled retrains: APScheduler 3 with its job store in the service's own database, one job per model.

A schedule is set from the command line (``anomaly retrain schedule NAME --every 6h``) and kept in
the ``apscheduler_jobs`` table, so every replica and every restart sees the same timetable. Each job
runs with ``max_instances=1`` (a retrain still running when the next is due is not doubled),
``coalesce`` (runs missed while no scheduler ran become one run) and a misfire grace time (a run
later than that waits for its next time). The job store records each job's next run time as the
job starts, so a restart never runs the same due time again.

Exactly one process runs the timetable. On PostgreSQL it is the holder of a session advisory lock:
any number of ``anomaly scheduler`` processes or ``anomaly serve --scheduler`` replicas may run,
the others wait, and when the holder dies its connection closes, the lock is free and another
takes over within ``poll`` seconds. SQLite has no such lock: run one scheduling process only.

The same timetable holds one more job, ``retention`` (``anomaly.store.retention``), every
``[retention] every``: the process that takes the lead sets it from its configuration.
"""

from __future__ import annotations

import logging
import re
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine

from anomaly.errors import AnomalyError, failure_line
from anomaly.store import registry, retention
from anomaly.store.engine import get_engine

log = logging.getLogger(__name__)

JOB_TABLE = "apscheduler_jobs"  # migrations/env.py leaves it out of Alembic's comparison
JOB_PREFIX = "retrain:"
RETENTION_JOB = "retention"
# The advisory lock's key: any fixed 64-bit number no other application in the database uses.
LOCK_KEY = 0x616E6F6D616C79  # "anomaly"
_EVERY = re.compile(r"^(\d+)\s*([smhd])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def trigger_for(every: str | None, cron: str | None) -> BaseTrigger:
    """An interval (``90s``, ``30m``, ``6h``, ``1d``) or a crontab line (``0 3 * * *``, in UTC); exactly one."""
    if (every is None) == (cron is None):
        raise AnomalyError("give either --every (30m, 6h, 1d) or --cron ('0 3 * * *'), not both or neither")
    if every is not None:
        found = _EVERY.match(every.strip())
        if not found or int(found[1]) == 0:
            raise AnomalyError(f"--every takes a whole number of s, m, h or d (30m, 6h, 1d), not {every!r}")
        return IntervalTrigger(**{_UNITS[found[2]]: int(found[1])}, timezone=timezone.utc)
    try:
        return CronTrigger.from_crontab(cron, timezone=timezone.utc)
    except ValueError as exc:
        raise AnomalyError(f"--cron {cron!r}: {exc}") from None


def scheduled_retrain(name: str) -> None:
    """The job every schedule runs: one retrain, whose outcome its ``training_runs`` row records."""
    from anomaly.retrain import run

    try:
        report = run.retrain(name, trigger="scheduled")
    except Exception as exc:  # a job's failure must not stop the scheduler; the run's row says what happened
        log.error("scheduled retrain of %s failed: %s", name, failure_line(exc))
        return
    log.info("scheduled retrain of %s: %s (%s)", name, report.decision, report.reason)


def _settings(engine: Engine | None) -> dict[str, Any]:
    from anomaly import settings

    grace = settings.load().settings.retrain.misfire_grace_time
    return {
        "jobstores": {"default": SQLAlchemyJobStore(engine=engine or get_engine(), tablename=JOB_TABLE)},
        "job_defaults": {"coalesce": True, "max_instances": 1, "misfire_grace_time": grace},
        "timezone": timezone.utc,
    }


def scheduler(engine: Engine | None = None) -> BackgroundScheduler:
    """A scheduler over the database's job store, with the job defaults every schedule shares."""
    return BackgroundScheduler(**_settings(engine))


class _JobStoreOnly(BaseScheduler):
    """Reads and writes the job store and never runs a job: it has no thread that could.

    A BackgroundScheduler started paused would do, but for one pass over the due jobs as it shuts
    down, which would run (or, its executor gone, drop) a due retrain from ``anomaly retrain schedules``.
    """

    def wakeup(self) -> None:
        """Nothing to wake: this scheduler never processes jobs."""

    def shutdown(self, wait: bool = True) -> None:
        super().shutdown(wait)


@dataclass(frozen=True)
class Schedule:
    """One model's retrain schedule as ``anomaly retrain schedules`` lists it."""

    name: str
    trigger: str
    next_run: datetime | None


def _store(engine: Engine | None) -> _JobStoreOnly:
    """The job store behind a scheduler that never runs jobs, for setting and reading schedules."""
    store = _JobStoreOnly(**_settings(engine))
    store.start(paused=True)
    return store


def add_schedule(name: str, trigger: BaseTrigger, *, engine: Engine | None = None) -> Schedule:
    """Schedule retrains of ``name`` (replacing its schedule, if any); the name must have an active version."""
    if registry.active_model(name, engine=engine) is None:
        raise AnomalyError(f"no active version of {name!r} to retrain; see `anomaly models`")
    store = _store(engine)
    try:
        job = store.add_job(
            scheduled_retrain, trigger, args=[name], id=JOB_PREFIX + name, name=f"retrain {name}", replace_existing=True
        )
        return Schedule(name, str(trigger), job.next_run_time)
    finally:
        store.shutdown(wait=False)


def list_schedules(*, engine: Engine | None = None) -> list[Schedule]:
    """Every model's schedule, by name."""
    store = _store(engine)
    try:
        jobs = [job for job in store.get_jobs() if job.id.startswith(JOB_PREFIX)]
        return sorted(
            (Schedule(job.id.removeprefix(JOB_PREFIX), str(job.trigger), job.next_run_time) for job in jobs),
            key=lambda s: s.name,
        )
    finally:
        store.shutdown(wait=False)


def remove_schedule(name: str, *, engine: Engine | None = None) -> None:
    store = _store(engine)
    try:
        if store.get_job(JOB_PREFIX + name) is None:
            raise AnomalyError(f"{name} has no retrain schedule; see `anomaly retrain schedules`")
        store.remove_job(JOB_PREFIX + name)
    finally:
        store.shutdown(wait=False)


def retention_job(running: BaseScheduler) -> None:
    """Put the retention job in step with ``[retention]``: added, re-timed when ``every`` changed, or removed when off.

    An unchanged job is left as it is, so a new leader (a restart, a failover) keeps its next run time
    instead of pushing it a whole interval on. Late runs are never dropped (no misfire grace time):
    clearing old payloads late is harmless, not clearing them for a day because a restart came at the
    wrong minute is not.
    """
    from anomaly import settings

    config = settings.load().settings.retention
    existing = running.get_job(RETENTION_JOB)
    if config.payload_days == 0 and config.keep_versions == 0:
        if existing is not None:
            running.remove_job(RETENTION_JOB)
        return
    trigger = trigger_for(config.every, None)
    if existing is not None and str(existing.trigger) == str(trigger):
        return
    running.add_job(
        retention.scheduled,
        trigger,
        id=RETENTION_JOB,
        name="retention",
        replace_existing=True,
        misfire_grace_time=None,
    )
    log.info("retention runs every %s", config.every)


class Leadership:
    """Whether this process may run the timetable: the PostgreSQL advisory lock's holder, or anyone on SQLite."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._connection: Connection | None = None

    def acquire(self) -> bool:
        """Try (without waiting) to become the one scheduling process; True when this process is it."""
        if self.engine.dialect.name != "postgresql":
            return True
        if self.held():
            return True
        connection = self.engine.connect()
        taken = connection.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": LOCK_KEY}).scalar()
        connection.commit()
        if taken:
            self._connection = connection
        else:
            connection.close()
        return bool(taken)

    def held(self) -> bool:
        """Still the holder: the lock's connection answers (a lost connection has lost the lock)."""
        if self.engine.dialect.name != "postgresql":
            return True
        if self._connection is None:
            return False
        try:
            self._connection.execute(text("SELECT 1"))
            self._connection.commit()
            return True
        except Exception:
            self.release()
            return False

    def release(self) -> None:
        if self._connection is not None:
            try:
                self._connection.close()  # ends the session, which frees its advisory locks
            except Exception as exc:
                log.info("closing the scheduler lock's connection: %s", failure_line(exc))
            self._connection = None


def run_scheduler(stop: threading.Event, *, poll: float = 5.0, engine: Engine | None = None) -> None:
    """Run the timetable while this process holds the leadership, until ``stop`` is set; wait for it otherwise."""
    engine = engine or get_engine()
    leadership = Leadership(engine)
    running: BackgroundScheduler | None = None
    try:
        while not stop.is_set():
            if running is None and leadership.acquire():
                running = scheduler(engine)
                running.start()
                retention_job(running)
                log.info("this process runs the retrain schedule", extra={"fields": {"dialect": engine.dialect.name}})
            elif running is not None and not leadership.held():
                log.warning("lost the scheduler lock; another process may take over the retrain schedule")
                running.shutdown(wait=False)
                running = None
            stop.wait(poll)
    finally:
        if running is not None:
            running.shutdown(wait=False)
        leadership.release()
