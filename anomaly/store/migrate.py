"""Alembic, driven from code: no alembic.ini, the scripts live in the repository's ``migrations/``.

``migrations/`` installs as the ``anomaly_migrations`` package (editable or not), so the scripts are
found wherever the code is installed. The URL reaches ``migrations/env.py`` through ``Config.attributes`` rather
than an ini option, because configparser would choke on ``%`` in URL-encoded passwords.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy.engine import Engine

from anomaly.errors import AnomalyError
from anomaly.store.config import database_url
from anomaly.store.engine import create_engine_for, user_errors

_SPEC = importlib.util.find_spec("anomaly_migrations")
MIGRATIONS_DIR = Path(_SPEC.origin).parent if _SPEC and _SPEC.origin else Path("migrations")


def alembic_config(url: str | None = None) -> Config:
    """An Alembic Config for ``url``; without one, env.py reads the configured database."""
    if not MIGRATIONS_DIR.is_dir():
        raise AnomalyError(f"migrations folder {MIGRATIONS_DIR} is missing; reinstall the anomaly-gan package")
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if url:
        config.attributes["url"] = url
    return config


def _scripts() -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config())


def head_revision() -> str:
    """The newest migration this code ships."""
    head = _scripts().get_current_head()
    assert head is not None, "migrations/versions holds no scripts"
    return head


def known_revision(revision: str) -> bool:
    """Whether ``revision`` is one of this code's migrations."""
    try:
        return _scripts().get_revision(revision) is not None
    except CommandError:
        return False


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at, ``None`` for a database never migrated."""
    with user_errors(engine.url.render_as_string(hide_password=False)), engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def _run(action: str, url: str | None, revision: str) -> None:
    url = url or database_url()
    with user_errors(url):
        try:
            getattr(command, action)(alembic_config(url), revision)
        except CommandError as exc:
            raise AnomalyError(f"cannot {action} to {revision!r}: {exc}") from None


def upgrade(revision: str = "head", url: str | None = None) -> None:
    """Migrate the database up to ``revision`` (creating the schema on a new database)."""
    _run("upgrade", url, revision)


def downgrade(revision: str, url: str | None = None) -> None:
    """Migrate the database down to ``revision`` (``base`` drops every table)."""
    _run("downgrade", url, revision)


def current(url: str | None = None) -> str | None:
    """The configured database's revision; see ``current_revision``."""
    engine = create_engine_for(url or database_url())
    try:
        return current_revision(engine)
    finally:
        engine.dispose()
