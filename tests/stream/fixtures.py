"""Fixtures of the scorer tests: tiny models trained once per session, and their own PostgreSQL server.

The databases (``db_url``, ``pg_db``) are tests/db.py's; here ``postgres_server`` puts them on a server
of the stream tests' own (``support.PG_ENV``), with the same skip and CI rules as the shared one.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.db import running_server_url
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
def postgres_server() -> Iterator[str]:
    """The stream tests' own running PostgreSQL server, so the outage test's stop never disturbs the shared
    one other test sessions may be using; stopped at the end of the session if this session started it."""
    already_running = postgres("status").returncode == 0
    yield running_server_url(PG_ENV)
    if not already_running:
        postgres("stop")
