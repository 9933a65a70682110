"""Store fixtures: every test that takes ``db_url`` runs on SQLite and on a real PostgreSQL server.

The PostgreSQL server is started once per session by scripts/postgres.sh. Without its binaries the
PostgreSQL cases skip locally; under CI (``CI`` set) any failure to start fails them instead.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine

from anomaly.store import migrate, registry
from anomaly.store.engine import get_engine
from anomaly.store.registry import ModelRecord, register_trained_model
from anomaly.store.schema import Base
from tests.postgres import running_server_url
from tests.scratch import scratch_database


@pytest.fixture(autouse=True)
def folders_load(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests register manifest stubs, not model folders, so promote's load check (tested with
    real models in tests/stream/test_bad_models.py) is taken as passed here."""
    monkeypatch.setattr(registry, "check_loads", lambda record: None)


@pytest.fixture(scope="session")
def postgres_server() -> str:
    """The URL of the shared test database on a running server."""
    return running_server_url()


@pytest.fixture(scope="session")
def postgres_url(postgres_server: str) -> str:
    """The shared test database, rebuilt from base once per session."""
    migrate.downgrade("base", url=postgres_server)
    migrate.upgrade(url=postgres_server)
    return postgres_server


def _empty(engine: Engine) -> None:
    with engine.begin() as connection:
        for table in reversed(Base.metadata.sorted_tables):
            connection.execute(table.delete())


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database at head with empty tables: a fresh SQLite file, or the emptied PostgreSQL one."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'store.db'}"
        migrate.upgrade(url=url)
        return url
    url = request.getfixturevalue("postgres_url")
    _empty(get_engine(url))
    return url


@pytest.fixture
def engine(db_url: str) -> Engine:
    return get_engine(db_url)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def blank_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database with no schema at all, for migration tests: a new file or a new PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'blank.db'}"
        return
    with scratch_database(request.getfixturevalue("postgres_server"), prefix="anomaly_blank") as url:
        yield url


@pytest.fixture
def manifest() -> dict:
    """The manifest keys the registry reads, as a trained detector writes them."""
    return {
        "detector": {"name": "ganomaly", "version": "0.1.0"},
        "threshold": 0.42,
        "training": {
            "metrics": {"auroc": 0.71},
            "started_at": "2026-11-26T10:00:00+00:00",
            "finished_at": "2026-11-26T10:05:00+00:00",
        },
    }


@pytest.fixture
def register(engine: Engine, tmp_path: Path, manifest: dict) -> Callable[..., list[ModelRecord]]:
    """Register ``count`` versions of a model (named ``tiles`` unless told) in the test database."""

    def register_versions(name: str = "tiles", count: int = 1, **kwargs: Any) -> list[ModelRecord]:
        return [register_trained_model(name, tmp_path, manifest, engine=engine, **kwargs) for _ in range(count)]

    return register_versions
