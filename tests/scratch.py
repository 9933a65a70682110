"""Throwaway PostgreSQL databases on the loopback server of scripts/postgres.sh.

Shared by the store and stream tests and the store and stream benchmarks, which each need a database of
their own that disappears afterwards. Test scaffolding, not the library: it runs the checkout's script.
"""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import DBAPIError

from anomaly.store.engine import create_engine_for

POSTGRES_SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "postgres.sh"


def postgres_script(action: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``scripts/postgres.sh ACTION``; ``env`` picks another server (its folder and port)."""
    return subprocess.run(
        ["bash", str(POSTGRES_SCRIPT), action],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
    )


@contextmanager
def scratch_database(server_url: str, prefix: str = "anomaly_scratch") -> Iterator[str]:
    """Create an empty database next to ``server_url``'s, yield its URL, drop it afterwards."""
    server = make_url(server_url)
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = create_engine_for(server_url)
    try:
        with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        _drop(admin, name)
        admin.dispose()


def _drop(admin: Engine, name: str, patience: float = 60.0) -> None:
    """Drop ``name``, waiting out the server's autovacuum worker on a freshly filled database.

    ``WITH (FORCE)`` ends the test's own sessions, but not an autovacuum worker, which belongs to
    the superuser: the drop is refused with InsufficientPrivilege (or ObjectInUse) until it ends.
    """
    deadline = time.monotonic() + patience
    while True:
        try:
            with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            return
        except DBAPIError as exc:
            if getattr(exc.orig, "sqlstate", None) not in ("42501", "55006") or time.monotonic() > deadline:
                raise
            time.sleep(0.5)
