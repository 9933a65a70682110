"""Retrain fixtures: a registered champion whose folder holds a series manifest, and stored events for it."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from anomaly.artifact import Manifest
from anomaly.store.engine import get_engine
from anomaly.store.queries import insert_events
from anomaly.store.registry import ModelRecord, register_trained_model
from anomaly.store.schema import Event, utcnow

WINDOW = 4


def series_manifest(source: str | None = None) -> Manifest:
    """A one-epoch two-channel series model's manifest, as a champion's folder holds it."""
    return Manifest.model_validate(
        {
            "detector": {"name": "ganomaly", "version": "0.1.0", "components": ["reconstruction"]},
            "input": {"modality": "series", "window": WINDOW, "channels": 2, "mean": [0, 0], "std": [1, 1]},
            "params": {},
            "settings": {"holdout": 0.2},
            "normalisation": {"mean": {"reconstruction": 0.0}, "std": {"reconstruction": 1.0}, "weights": {}},
            "threshold": 0.5,
            "training": {
                "started_at": "2026-11-26T10:00:00+00:00",
                "finished_at": "2026-11-26T10:05:00+00:00",
                "seconds": 300.0,
                "train_items": 80,
                "validation_items": 20,
                "train_samples": 73,
                "validation_samples": 13,
                "epochs_run": 1,
                "data": {"source": source, "items": 100},
            },
        }
    )


@pytest.fixture
def engine(db_url: str) -> Engine:
    return get_engine(db_url)


@pytest.fixture
def champion(engine: Engine, tmp_path: Path) -> ModelRecord:
    """Version 1 of ``pump``, active, with a manifest-only folder (enough for everything but scoring)."""
    folder = tmp_path / "pump-1"
    folder.mkdir()
    manifest = series_manifest()
    manifest.write(folder)
    return register_trained_model("pump", folder, manifest, engine=engine)


@pytest.fixture
def store_readings(engine: Engine) -> Callable[..., None]:
    """Store readings as events ``model_id`` scored: (values, score, is_anomaly, label) each, a second apart."""

    def store(
        model_id: int, readings: list[tuple[list[float], float, bool, str | None]], source: str = "p1", first: int = 0
    ) -> None:
        start = utcnow() - timedelta(hours=1)
        rows = [
            {
                "topic": "sensors",
                "partition": 0,
                "offset": first + i,
                "source": source,
                "event_time": start + timedelta(seconds=i),
                "model_id": model_id,
                "score": score,
                "threshold": 0.5,
                "is_anomaly": is_anomaly,
                "payload": json.dumps({"source": source, "values": values}).encode(),
                "payload_content_type": "application/json",
            }
            for i, (values, score, is_anomaly, _) in enumerate(readings)
        ]
        insert_events(engine, rows)
        with Session(engine) as session, session.begin():
            for i, (*_, label) in enumerate(readings):
                if label:
                    session.execute(update(Event).where(Event.offset == first + i).values(label=label))

    return store
