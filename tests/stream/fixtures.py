"""Fixtures of the scorer tests: tiny models trained once per session, and databases at head.

PostgreSQL is a server of the stream tests' own (``support.PG_ENV``), started by scripts/postgres.sh
as the store tests start theirs; without its binaries the PostgreSQL cases skip locally and fail
under CI (``CI`` set).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from anomaly.store import migrate
from tests.postgres import running_server_url
from tests.scratch import scratch_database
from tests.stream.support import PG_ENV, postgres, train_tiny


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Image models (two seeds, for the hot swap) at 16 px and a 2-channel series model of window 8."""
    root = tmp_path_factory.mktemp("models")
    return {
        "image": train_tiny("image", root / "image"),
        "image2": train_tiny("image", root / "image2", seed=1),
        "series": train_tiny("series", root / "series"),
    }


@pytest.fixture(scope="session")
def stream_postgres() -> Iterator[str]:
    """The URL of the stream tests' own running PostgreSQL server, stopped at the end of the session."""
    yield running_server_url(PG_ENV)
    postgres("stop")


@pytest.fixture
def pg_db(stream_postgres: str) -> Iterator[str]:
    """A fresh PostgreSQL database at head, dropped after the test."""
    with scratch_database(stream_postgres, prefix="anomaly_stream") as url:
        migrate.upgrade(url=url)
        yield url


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def stream_db(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A store at head: a fresh SQLite file, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'stream.db'}"
        migrate.upgrade(url=url)
        return url
    return request.getfixturevalue("pg_db")
