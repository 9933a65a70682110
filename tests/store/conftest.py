"""Store fixtures: the registry on the databases of tests/db.py (``db_url`` runs on SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine

from anomaly.artifact import Manifest
from anomaly.store import registry
from anomaly.store.engine import get_engine
from anomaly.store.registry import ModelRecord, register_trained_model


@pytest.fixture(autouse=True)
def folders_load(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests register manifest stubs, not model folders, so promote's load check (tested with
    real models in tests/stream/test_bad_models.py) is taken as passed here."""
    monkeypatch.setattr(registry, "check_loads", lambda record: None)


@pytest.fixture
def engine(db_url: str) -> Engine:
    return get_engine(db_url)


@pytest.fixture
def manifest() -> Manifest:
    """A trained detector's manifest, as the registry receives it."""
    return Manifest.model_validate(
        {
            "detector": {"name": "ganomaly", "version": "0.1.0", "components": ["reconstruction"]},
            "input": {"modality": "series", "window": 8},
            "params": {},
            "normalisation": {"mean": {"reconstruction": 0.0}, "std": {"reconstruction": 1.0}, "weights": {}},
            "threshold": 0.42,
            "training": {
                "metrics": {"auroc": 0.71},
                "started_at": "2026-11-26T10:00:00+00:00",
                "finished_at": "2026-11-26T10:05:00+00:00",
                "seconds": 300.0,
                "train_items": 80,
                "validation_items": 20,
                "train_samples": 73,
                "validation_samples": 13,
                "epochs_run": 1,
            },
        }
    )


@pytest.fixture
def register(engine: Engine, tmp_path: Path, manifest: Manifest) -> Callable[..., list[ModelRecord]]:
    """Register ``count`` versions of a model (named ``tiles`` unless told) in the test database."""

    def register_versions(name: str = "tiles", count: int = 1, **kwargs: Any) -> list[ModelRecord]:
        return [register_trained_model(name, tmp_path, manifest, engine=engine, **kwargs) for _ in range(count)]

    return register_versions
