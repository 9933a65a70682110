"""The model registry: every trained version of every named model, and which one serves.

Version numbers count up per name. The database's partial unique index allows one ``active``
version per name; registration, ``promote`` and ``rollback`` lock the name's rows first so two
racing promotions both succeed in turn instead of one failing on that index, and two racing
registrations pick distinct versions.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import desc, select, text, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from anomaly.artifact import Manifest
from anomaly.errors import AnomalyError, ArtifactError
from anomaly.store.engine import get_engine
from anomaly.store.schema import TRIGGERS, Model, TrainingRun, utcnow

log = logging.getLogger(__name__)

# Only the very first version of a name has no rows to lock: two racing registrations can both pick
# version 1, and the loser retries (then as version 2).
_REGISTER_ATTEMPTS = 3
# The advisory-lock key space of model registrations (two-int4 form, apart from the scheduler's one-key lock).
_LOCK_SPACE = 0x616E6F6D


@dataclass(frozen=True)
class ModelRecord:
    """One registered model version, detached from any database session."""

    id: int
    name: str
    detector: str
    version: int
    artifact: str
    status: str
    threshold: float
    created_at: datetime
    artifact_removed_at: datetime | None = None

    @classmethod
    def of(cls, model: Model) -> ModelRecord:
        return cls(**{name: getattr(model, name) for name in cls.__dataclass_fields__})

    @property
    def shown_status(self) -> str:
        """The status as ``anomaly models`` shows it: a retired version whose folder retention removed says so."""
        return f"{self.status}, removed" if self.artifact_removed_at else self.status


def _refuse_removed(model: Model | ModelRecord) -> None:
    """One line instead of activating a version whose folder retention removed (it could not load)."""
    if model.artifact_removed_at is not None:
        raise AnomalyError(
            f"{model.name} version {model.version} cannot serve again: retention removed its folder "
            f"on {model.artifact_removed_at:%Y-%m-%d} ([retention] keep_versions)"
        )


def lock_versions(session: Session, name: str) -> list[Model]:
    """The name's versions, read only after this transaction holds the write lock on them.

    On PostgreSQL a transaction advisory lock on the name queues registrations of one name first:
    the row locks of the UPDATE below, taken in no fixed order, deadlocked two registrations that
    each held some of the rows. A no-op UPDATE then takes the lock on both dialects: row locks on
    PostgreSQL, the database write lock on SQLite (where a plain SELECT would not start the write
    transaction). Reading after it, in a new statement, sees whatever a concurrent writer we waited
    for has committed, which a ``SELECT ... FOR UPDATE`` does not for rows inserted meanwhile.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(
            text("SELECT pg_advisory_xact_lock(:space, hashtext(:name))"), {"space": _LOCK_SPACE, "name": name}
        )
    session.execute(update(Model).where(Model.name == name).values(name=Model.name))
    return list(session.scalars(select(Model).where(Model.name == name).order_by(Model.version)))


def register_trained_model(
    name: str,
    model_dir: Path,
    manifest: Manifest,
    trigger: str = "manual",
    data_summary: dict[str, Any] | None = None,
    *,
    engine: Engine | None = None,
) -> ModelRecord:
    """Store a trained model as the next version of ``name`` and record its training run.

    The first version of a name becomes ``active`` so a fresh install can score at once; later
    versions are ``candidate`` until someone (or the retraining policy) promotes them.
    """
    if not name.strip():
        raise AnomalyError("a model name cannot be empty")
    if trigger not in TRIGGERS:
        raise AnomalyError(f"trigger must be one of {', '.join(TRIGGERS)}, not {trigger!r}")
    engine = engine or get_engine()
    attempt = 1
    while True:
        try:
            return _register(engine, name, Path(model_dir), manifest, trigger, data_summary)
        except IntegrityError:
            if attempt == _REGISTER_ATTEMPTS:
                raise
            attempt += 1
            log.info("version of %s taken by a concurrent registration; retrying", name)


def _register(
    engine: Engine,
    name: str,
    model_dir: Path,
    manifest: Manifest,
    trigger: str,
    data_summary: dict[str, Any] | None,
) -> ModelRecord:
    with Session(engine, expire_on_commit=False) as session, session.begin():
        versions = lock_versions(session, name)
        version = max((m.version for m in versions), default=0) + 1
        first = version == 1
        model = Model(
            name=name,
            detector=manifest.detector.name,
            detector_version=manifest.detector.version,
            version=version,
            artifact=str(model_dir.resolve()),
            manifest=manifest.to_json(),
            metrics=manifest.training.metrics,
            threshold=manifest.threshold,
            status="active" if first else "candidate",
        )
        session.add(model)
        session.flush()
        session.add(
            TrainingRun(
                model_id=model.id,
                model_name=name,
                trigger=trigger,
                started_at=manifest.training.started_at,
                finished_at=manifest.training.finished_at,
                status="succeeded",
                data_summary=data_summary,
                metrics=manifest.training.metrics,
                decision="active" if first else "candidate",
                reason=f"first version of {name}" if first else "registered; awaiting promotion",
            )
        )
        return ModelRecord.of(model)


def _activate(session: Session, target: Model) -> None:
    """Retire the name's active version, then activate ``target``, in that order for the index."""
    now = utcnow()
    session.execute(
        update(Model)
        .where(Model.name == target.name, Model.status == "active")
        .values(status="retired", retired_at=now)
    )
    session.execute(update(Model).where(Model.id == target.id).values(status="active", retired_at=None))


def _version(versions: list[Model], name: str, version: int) -> Model:
    """``version`` of ``name`` among its ``versions``; a user error naming the known ones if absent."""
    by_version = {m.version: m for m in versions}
    if not by_version:
        raise AnomalyError(f"no model named {name!r}; see `anomaly models`")
    target = by_version.get(version)
    if target is None:
        known = ", ".join(str(v) for v in by_version)
        raise AnomalyError(f"{name} has no version {version} (versions: {known})")
    return target


def check_loads(record: ModelRecord) -> None:
    """Open the version's folder with its detector, as a scorer would; one ArtifactError line if it will not.

    Any exception counts (a manifest naming unknown parameters raises TypeError deep inside, say),
    since a scorer refuses such a version and keeps serving the old one anyway.
    """
    from anomaly.errors import failure_line
    from anomaly.plugins import load_model

    try:
        load_model(record.artifact)
    except Exception as exc:
        raise ArtifactError(
            f"{record.name} version {record.version} will not load, so it stays {record.status}: {failure_line(exc)}"
        ) from exc


def promote(name: str, version: int, *, engine: Engine | None = None) -> ModelRecord:
    """Make ``version`` the only active version of ``name``; the previously active one is retired.

    The version must load first (``check_loads``). That runs before the name's rows are locked:
    building the networks takes seconds, and on SQLite the lock would stall every writer meanwhile.
    """
    engine = engine or get_engine()
    with Session(engine) as session:
        versions = list(session.scalars(select(Model).where(Model.name == name).order_by(Model.version)))
        target = ModelRecord.of(_version(versions, name, version))
    _refuse_removed(target)
    if target.status != "active":
        check_loads(target)
    with Session(engine, expire_on_commit=False) as session, session.begin():
        model = _version(lock_versions(session, name), name, version)
        if model.status != "active":
            _refuse_removed(model)  # retention may have removed it while the folder was being opened
            _activate(session, model)
            session.refresh(model)
        return ModelRecord.of(model)


def rollback(name: str, *, engine: Engine | None = None) -> ModelRecord:
    """Re-activate the version that served before the current one (the most recently retired)."""
    with Session(engine or get_engine(), expire_on_commit=False) as session, session.begin():
        versions = lock_versions(session, name)
        if not versions:
            raise AnomalyError(f"no model named {name!r}; see `anomaly models`")
        retired = [m for m in versions if m.status == "retired"]
        if not retired:
            raise AnomalyError(f"{name} has no retired version to roll back to")
        previous = max(retired, key=lambda m: (m.retired_at, m.version))
        _refuse_removed(previous)
        _activate(session, previous)
        session.refresh(previous)
        return ModelRecord.of(previous)


def active_model(name: str, *, engine: Engine | None = None) -> ModelRecord | None:
    """The version of ``name`` that should score now, if any."""
    with Session(engine or get_engine()) as session:
        model = session.scalars(select(Model).where(Model.name == name, Model.status == "active")).one_or_none()
        return ModelRecord.of(model) if model else None


def list_models(name: str | None = None, *, engine: Engine | None = None) -> list[ModelRecord]:
    """Every registered version (of one name, if given), by name then newest version first."""
    query = select(Model).order_by(Model.name, desc(Model.version))
    if name is not None:
        query = query.where(Model.name == name)
    with Session(engine or get_engine()) as session:
        return [ModelRecord.of(m) for m in session.scalars(query)]
