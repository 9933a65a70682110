"""Starting a PostgreSQL test server through scripts/postgres.sh, with one rule for when it can't start.

Without its binaries the PostgreSQL cases skip locally; under CI (``CI`` set) any failure to
start fails them, because CI must run them.
"""

from __future__ import annotations

import os

import pytest

from tests.scratch import postgres_script

MISSING_BINARY = 3  # scripts/postgres.sh's exit status when PostgreSQL is not installed


def running_server_url(env: dict[str, str] | None = None) -> str:
    """Start the server (a no-op when it runs) and return the URL of its test database."""
    started = postgres_script("start", env)
    if started.returncode != 0:
        reason = f"PostgreSQL did not start: {started.stderr.strip() or started.stdout.strip()}"
        if started.returncode == MISSING_BINARY and not os.environ.get("CI"):
            pytest.skip(reason)
        pytest.fail(reason)
    return postgres_script("url", env).stdout.strip()
