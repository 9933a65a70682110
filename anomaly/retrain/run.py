"""One retrain job: record the run, train in a separate process, register, compare, promote or not.

The run's ``training_runs`` row is written first (``running``) and finished whatever happens: a
skip (too little data, with why), a failure (the worker's one line, or how the process died: killed
at the time limit, by a signal, out of memory), or the challenger's metrics next to the champion's
with the decision and its reason. The challenger is registered either way (a rejected one stays a
``candidate`` an operator may still promote); the registry's own row for it is folded into this
run's, so one retrain is one row. Whatever the outcome the champion keeps serving unless promoted.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from anomaly.artifact import Manifest
from anomaly.errors import AnomalyError, failure_line
from anomaly.retrain.compare import decide
from anomaly.settings import RetrainConfig
from anomaly.store import registry
from anomaly.store.engine import get_engine
from anomaly.store.schema import TrainingRun, utcnow

WORKER_MODULE = "anomaly.retrain.worker"
_THREAD_VARIABLES = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "TF_NUM_INTRAOP_THREADS",
    "TF_NUM_INTEROP_THREADS",
)


@dataclass
class RunReport:
    """What one retrain did, as ``anomaly retrain`` prints it and its ``training_runs`` row holds it."""

    run_id: int
    name: str
    trigger: str
    status: str
    decision: str
    reason: str
    champion_version: int
    challenger_version: int | None = None
    summary: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0


def retrain(
    name: str,
    *,
    trigger: str = "manual",
    progress: bool = False,
    config: RetrainConfig | None = None,
    engine: Engine | None = None,
) -> RunReport:
    """Retrain the active version of ``name`` once, with its ``[retrain.models.NAME]`` keys over ``config``'s.

    See the module docstring for what is recorded; the data summary holds the effective data and decision keys.
    """
    from anomaly import settings

    config = (config or settings.load().settings.retrain).for_model(name)
    engine = engine or get_engine()
    champion = registry.active_model(name, engine=engine)
    if champion is None:
        raise AnomalyError(f"no active version of {name!r} to retrain; see `anomaly models`")
    model_ids = [m.id for m in registry.list_models(name, engine=engine)]
    started = utcnow()
    with Session(engine) as session, session.begin():
        _abandon_stale(session, name, config, started)
        row = TrainingRun(
            model_name=name,
            trigger=trigger,
            started_at=started,
            status="running",
            data_summary={"champion_version": champion.version, "settings": config.decisions()},
        )
        session.add(row)
        session.flush()
        run_id = row.id
    report = RunReport(run_id, name, trigger, "running", "", "", champion.version)
    try:
        outcome = _train(champion, model_ids, config, engine, progress, started)
        _conclude(report, outcome, config, engine)
    except BaseException as exc:
        report.status, report.decision, report.reason = "failed", "failed", failure_line(exc)
        _finish(engine, report, error=report.reason)
        raise
    report.seconds = (utcnow() - started).total_seconds()
    return report


def _abandon_stale(session: Session, name: str, config: RetrainConfig, now: datetime) -> None:
    """Fail the name's runs still ``running`` past the time limit: the process that ran them is gone.

    A live run's worker is killed at the time limit and its row finished, so such a row is left by a
    scheduler or ``anomaly retrain`` that died itself; without this it would read ``running`` forever.
    """
    reason = "abandoned: the process running it ended before recording an outcome"
    session.execute(
        update(TrainingRun)
        .where(
            TrainingRun.model_name == name,
            TrainingRun.status == "running",
            TrainingRun.started_at < now - timedelta(seconds=config.time_limit + 60),
        )
        .values(status="failed", decision="failed", reason=reason, error=reason, finished_at=now)
    )


def _out_dir(champion: registry.ModelRecord, config: RetrainConfig, started: datetime) -> Path:
    base = config.models_dir or Path(champion.artifact).parent
    return Path(base) / f"{champion.name}-{started:%Y%m%dT%H%M%S%f}"


def _train(
    champion: registry.ModelRecord,
    model_ids: list[int],
    config: RetrainConfig,
    engine: Engine,
    progress: bool,
    started: datetime,
) -> dict[str, Any]:
    """Run the worker process within the configured limits; its outcome, or ``failed`` saying how it died."""
    with tempfile.TemporaryDirectory(prefix="anomaly-retrain-") as scratch:
        job, result = Path(scratch) / "job.json", Path(scratch) / "result.json"
        job.write_text(
            json.dumps(
                {
                    "champion": champion.artifact,
                    "model_ids": model_ids,
                    "database": engine.url.render_as_string(hide_password=False),
                    "config": config.model_dump(mode="json"),
                    "out": str(_out_dir(champion, config, started)),
                    "progress": progress,
                }
            )
        )
        env = {**os.environ, **{name: str(config.threads) for name in _THREAD_VARIABLES}}
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        process = subprocess.Popen([sys.executable, "-m", WORKER_MODULE, str(job), str(result)], env=env)
        try:
            code = process.wait(timeout=config.time_limit)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            return {"status": "failed", "error": f"killed at the time limit of {config.time_limit:g} s"}
        except BaseException:
            process.kill()
            process.wait()
            raise
        if result.is_file():
            return json.loads(result.read_text())
        return {"status": "failed", "error": _death(code, config)}


def _death(code: int, config: RetrainConfig) -> str:
    """How a worker that left no outcome ended: a signal (the kernel's OOM killer sends SIGKILL) or an exit status."""
    if code < 0:
        name = signal.Signals(-code).name
        hint = f" (out of memory? the limit is {config.memory_limit_mb} MiB)" if -code == signal.SIGKILL else ""
        return f"training process killed by {name}{hint}"
    return f"training process exited with status {code} and no outcome"


def _conclude(report: RunReport, outcome: dict[str, Any], config: RetrainConfig, engine: Engine) -> None:
    """Record the worker's outcome; register the challenger and promote it when it is no worse."""
    if outcome["status"] == "skipped":
        report.status, report.decision, report.reason = "succeeded", "skipped", outcome["reason"]
        _finish(engine, report)
        return
    if outcome["status"] != "trained":
        report.status, report.decision, report.reason = "failed", "failed", outcome["error"]
        _finish(engine, report, error=outcome["error"])
        return
    out = Path(outcome["out"])
    record = registry.register_trained_model(
        report.name, out, Manifest.read(out), trigger=report.trigger, data_summary=outcome["summary"], engine=engine
    )
    report.challenger_version = record.version
    report.summary = {**outcome["summary"], "champion_version": report.champion_version, "settings": config.decisions()}
    report.metrics = {"champion": outcome["champion"], "challenger": outcome["challenger"]}
    decision = decide(outcome["champion"], outcome["challenger"], config.fpr_margin, config.auroc_margin)
    report.status, report.decision, report.reason = "succeeded", decision.name, decision.reason
    _finish(engine, report, model_id=record.id)
    if decision.promote:
        try:
            registry.promote(report.name, record.version, engine=engine)
        except AnomalyError as exc:
            report.decision, report.reason = "rejected", failure_line(exc)
            _finish(engine, report, model_id=record.id)


def _finish(engine: Engine, report: RunReport, *, model_id: int | None = None, error: str | None = None) -> None:
    """Write the outcome into the run's row; a registered challenger's own registry row is merged into it."""
    with Session(engine) as session, session.begin():
        if model_id is not None:
            session.execute(
                delete(TrainingRun).where(TrainingRun.model_id == model_id, TrainingRun.id != report.run_id)
            )
        values: dict[str, Any] = {
            "status": report.status,
            "finished_at": utcnow(),
            "decision": report.decision,
            "reason": report.reason,
            "error": error,
        }
        if report.summary:
            values["data_summary"] = report.summary
        if report.metrics:
            values["metrics"] = report.metrics
        if model_id is not None:
            values["model_id"] = model_id
        session.execute(update(TrainingRun).where(TrainingRun.id == report.run_id).values(**values))


@dataclass(frozen=True)
class LastRun:
    """The newest training run of one model name, as ``anomaly models`` lists it."""

    name: str
    trigger: str
    started_at: datetime
    status: str
    decision: str | None
    reason: str | None


def last_runs(engine: Engine | None = None) -> list[LastRun]:
    """Each model name's newest training run, by name."""
    newest = (
        select(TrainingRun.model_name, func.max(TrainingRun.id).label("id")).group_by(TrainingRun.model_name).subquery()
    )
    query = select(TrainingRun).join(newest, TrainingRun.id == newest.c.id).order_by(TrainingRun.model_name)
    with Session(engine or get_engine()) as session:
        return [
            LastRun(r.model_name, r.trigger, r.started_at, r.status, r.decision, r.reason)
            for r in session.scalars(query)
        ]
