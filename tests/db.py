"""Database fixtures of the store and stream tests: SQLite files and databases on a PostgreSQL test server.

A test that takes ``db_url`` runs twice, on SQLite and on PostgreSQL (marked ``postgres``). The server
is started once per session by scripts/postgres.sh; a folder whose tests must not share it (the
stream tests stop theirs) overrides ``postgres_server``. Without PostgreSQL's binaries the PostgreSQL
cases skip locally; under CI (``CI`` set) any failure to start fails them, because CI must run them.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from anomaly.store import migrate
from anomaly.store.engine import get_engine
from anomaly.store.schema import Base
from tests.scratch import postgres_script, scratch_database

MISSING_BINARY = 3  # scripts/postgres.sh's exit status when PostgreSQL is not installed

ON_BOTH = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


def running_server_url(env: dict[str, str] | None = None) -> str:
    """Start the server ``env`` names (a no-op when it runs) and return the URL of its test database."""
    started = postgres_script("start", env)
    if started.returncode != 0:
        reason = f"PostgreSQL did not start: {started.stderr.strip() or started.stdout.strip()}"
        if started.returncode == MISSING_BINARY and not os.environ.get("CI"):
            pytest.skip(reason)
        pytest.fail(reason)
    return postgres_script("url", env).stdout.strip()


@pytest.fixture(scope="session")
def postgres_server() -> str:
    """The URL of the test database on the shared running server."""
    return running_server_url()


@functools.cache
def _rebuilt(server_url: str) -> str:
    """The server's test database, rebuilt from base once per session so no earlier schema lingers.

    Cached by URL rather than a session fixture: a session fixture would keep the first server it saw
    even for a folder that overrides ``postgres_server``."""
    migrate.downgrade("base", url=server_url)
    migrate.upgrade(url=server_url)
    return server_url


def _empty(engine: Engine) -> None:
    with engine.begin() as connection:
        for table in reversed(Base.metadata.sorted_tables):
            connection.execute(table.delete())


@pytest.fixture(params=ON_BOTH)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database at head with empty tables: a fresh SQLite file, or the emptied PostgreSQL test database
    (emptying is much faster than creating and migrating a database for each test)."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'store.db'}"
        migrate.upgrade(url=url)
        return url
    url = _rebuilt(request.getfixturevalue("postgres_server"))
    _empty(get_engine(url))
    return url


@pytest.fixture
def pg_db(postgres_server: str) -> Iterator[str]:
    """A new PostgreSQL database at head, dropped after the test."""
    with scratch_database(postgres_server, prefix="anomaly_test") as url:
        migrate.upgrade(url=url)
        yield url


@pytest.fixture(params=ON_BOTH)
def blank_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database with no schema at all, for migration tests: a new file or a new PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'blank.db'}"
        return
    with scratch_database(request.getfixturevalue("postgres_server"), prefix="anomaly_blank") as url:
        yield url
