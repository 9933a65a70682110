"""Retention: old payloads cleared from stored events, old retired versions' folders removed from disk.

Payloads (image bytes, readings) older than ``[retention] payload_days`` are set to NULL; the events
stay, with their scores, components, labels and stream positions, so counts, charts and the review
history keep working. Events with an operator's label keep their payload unless ``keep_labelled`` is
off: retraining trains on the ones labelled normal and judges challengers on the ones labelled
anomaly, and labels are few and dear. Rows are cleared in batches of ``batch_size``, each its own
short transaction, walking the ``(received_at, id)`` index from where the last batch ended, so the stream
writer waits at most one batch (on SQLite, the whole database) and a run reads each old row once.

Per model name, retired versions beyond the ``keep_versions`` most recently retired have their folder
deleted and ``artifact_removed_at`` set; active and candidate versions are never touched, and the
kept retired versions are what ``anomaly models rollback`` can return to. The mark is committed
(under the name's registry lock, so no promotion races it) before the folder is deleted: the
registry never offers a half-deleted folder. A folder that another version still uses, or that is
not a model folder, is left alone and said so.

``anomaly db prune`` runs this by hand (``--dry-run`` counts without changing anything); the
scheduler runs it every ``every`` (``anomaly.retrain.schedule.retention_job``).
"""

from __future__ import annotations

import logging
import shutil
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import func, select, tuple_, update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from anomaly.artifact import MANIFEST
from anomaly.errors import failure_line
from anomaly.settings import RetentionConfig
from anomaly.store.engine import get_engine
from anomaly.store.registry import lock_versions
from anomaly.store.schema import Event, Model, utcnow

log = logging.getLogger(__name__)


@dataclass
class PayloadOutcome:
    """What clearing payloads did (or, in a dry run, would do)."""

    cutoff: datetime | None
    cleared: int = 0
    cleared_bytes: int = 0
    kept_labelled: int = 0


@dataclass(frozen=True)
class VersionOutcome:
    """One retired version beyond the kept ones: ``removed``, ``would remove``, or ``left: why``."""

    name: str
    version: int
    artifact: str
    outcome: str
    folder_bytes: int = 0


@dataclass
class RetentionReport:
    """One retention run, as ``anomaly db prune`` prints it and the scheduler logs it."""

    dry_run: bool
    payload_days: int
    keep_labelled: bool
    keep_versions: int
    payloads: PayloadOutcome
    versions: list[VersionOutcome] = field(default_factory=list)
    seconds: float = 0.0


def run(
    config: RetentionConfig | None = None,
    *,
    dry_run: bool = False,
    engine: Engine | None = None,
    now: datetime | None = None,
) -> RetentionReport:
    """Apply ``config`` (default: ``[retention]`` of the configuration) once."""
    if config is None:
        from anomaly import settings

        config = settings.load().settings.retention
    engine = engine or get_engine()
    now = now or utcnow()
    started = time.monotonic()
    payloads = clear_payloads(engine, config, now, dry_run)
    versions = remove_artifacts(engine, config.keep_versions, now, dry_run)
    return RetentionReport(
        dry_run=dry_run,
        payload_days=config.payload_days,
        keep_labelled=config.keep_labelled,
        keep_versions=config.keep_versions,
        payloads=payloads,
        versions=versions,
        seconds=time.monotonic() - started,
    )


def clear_payloads(engine: Engine, config: RetentionConfig, now: datetime, dry_run: bool) -> PayloadOutcome:
    """Set the payload of events received before ``payload_days`` ago to NULL, one batch per transaction."""
    if config.payload_days == 0:
        return PayloadOutcome(cutoff=None)
    outcome = PayloadOutcome(cutoff=now - timedelta(days=config.payload_days))
    old = [Event.received_at < outcome.cutoff, Event.payload.is_not(None)]
    after: tuple[datetime, int] | None = None
    while True:
        query = select(Event.id, Event.received_at, Event.label, func.length(Event.payload)).where(*old)
        if after is not None:
            # A row-value comparison: both databases range-scan the (received_at, id) index from the last batch's end.
            query = query.where(tuple_(Event.received_at, Event.id) > tuple_(*after))
        query = query.order_by(Event.received_at, Event.id).limit(config.batch_size)
        with engine.begin() as connection:
            rows = connection.execute(query).all()
            doomed = [row for row in rows if row.label is None or not config.keep_labelled]
            outcome.kept_labelled += len(rows) - len(doomed)
            if doomed and dry_run:
                outcome.cleared += len(doomed)
            elif doomed:
                # The conditions again: a label given since the read keeps its payload.
                conditions = [Event.id.in_([row.id for row in doomed]), *old]
                if config.keep_labelled:
                    conditions.append(Event.label.is_(None))
                cleared = update(Event).where(*conditions).values(payload=None, payload_content_type=None)
                outcome.cleared += connection.execute(cleared).rowcount
            outcome.cleared_bytes += sum(row[3] or 0 for row in doomed)
        if len(rows) < config.batch_size:
            return outcome
        after = (rows[-1].received_at, rows[-1].id)


def _overlaps(one: Path, other: Path) -> bool:
    return one == other or one in other.parents or other in one.parents


def _folder_bytes(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file()) if folder.is_dir() else 0


def remove_artifacts(engine: Engine, keep: int, now: datetime, dry_run: bool) -> list[VersionOutcome]:
    """Remove the folders of each name's retired versions beyond the ``keep`` most recently retired."""
    if keep == 0:
        return []
    with Session(engine) as session:
        names = session.scalars(
            select(Model.name).where(Model.status == "retired", Model.artifact_removed_at.is_(None)).distinct()
        ).all()
    outcomes: list[VersionOutcome] = []
    for name in sorted(names):
        outcomes += _remove_beyond(engine, name, keep, now, dry_run)
    return outcomes


def _remove_beyond(engine: Engine, name: str, keep: int, now: datetime, dry_run: bool) -> list[VersionOutcome]:
    outcomes: list[VersionOutcome] = []
    with Session(engine) as session, session.begin():
        versions = (
            list(session.scalars(select(Model).where(Model.name == name))) if dry_run else lock_versions(session, name)
        )
        retired = sorted(
            (m for m in versions if m.status == "retired"),
            key=lambda m: (m.retired_at or m.created_at, m.version),
            reverse=True,
        )
        beyond = [m for m in retired[keep:] if m.artifact_removed_at is None]
        doomed_ids = {m.id for m in beyond}
        # Folders still in use: every other version not yet removed, of any name.
        in_use = session.execute(
            select(Model.name, Model.version, Model.artifact).where(
                Model.artifact_removed_at.is_(None), Model.id.not_in(list(doomed_ids))
            )
        ).all()
        for model in sorted(beyond, key=lambda m: m.version):
            folder = Path(model.artifact)
            sharer = next((user for user in in_use if _overlaps(folder, Path(user.artifact))), None)
            if sharer is not None:
                why = f"left: folder shared with {sharer.name} version {sharer.version}"
            elif folder.exists() and not (folder / MANIFEST).is_file():
                why = f"left: not a model folder (no {MANIFEST})"
            elif dry_run:
                why = "would remove" if folder.exists() else "would mark (folder already gone)"
            else:
                why = "removed" if folder.exists() else "marked (folder already gone)"
                model.artifact_removed_at = now
            outcomes.append(VersionOutcome(name, model.version, model.artifact, why, _folder_bytes(folder)))
    if not dry_run:
        outcomes = [_delete(outcome) for outcome in outcomes]
    return outcomes


def _delete(outcome: VersionOutcome) -> VersionOutcome:
    """Delete a marked version's folder; a failure is reported (the version stays marked: it cannot serve)."""
    if outcome.outcome != "removed":
        return outcome
    try:
        shutil.rmtree(outcome.artifact)
    except OSError as exc:
        log.error("retention could not delete %s: %s", outcome.artifact, failure_line(exc))
        return VersionOutcome(
            outcome.name, outcome.version, outcome.artifact, f"marked; deleting failed: {failure_line(exc)}"
        )
    return outcome


def scheduled() -> None:
    """The scheduler's retention job: one run with the configuration as it is now, its outcome logged."""
    try:
        report = run()
    except Exception as exc:  # a job's failure must not stop the scheduler; the next interval tries again
        log.error("scheduled retention failed: %s", failure_line(exc))
        return
    removed = sum(v.outcome == "removed" for v in report.versions)
    log.info(
        "retention cleared %d payloads (%d bytes) and removed %d model folders in %.1f s",
        report.payloads.cleared,
        report.payloads.cleared_bytes,
        removed,
        report.seconds,
    )
