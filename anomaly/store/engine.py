"""Engines for the configured database, and the guard that refuses a database behind the code.

SQLite connections get WAL (readers never block the stream writer) and foreign keys (off by
default in SQLite). Every connection problem becomes an ``AnomalyError`` naming the URL with its
password hidden, so a typo in the config never leaks a secret into a terminal or a log.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import orjson
from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import DBAPIError, NoSuchModuleError

from anomaly.errors import AnomalyError
from anomaly.store.config import checked_url, database_url, hide_password, scrub, url_secrets

log = logging.getLogger(__name__)

_engines: dict[str, Engine] = {}
_engines_lock = threading.Lock()


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _json_dumps(value: Any) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY)


def _postgres_json(dbapi_connection: Any, _record: Any) -> None:
    """orjson for the JSON psycopg writes itself (each event's components in the bulk COPY): 3-4x faster."""
    from psycopg.types.json import set_json_dumps

    set_json_dumps(_json_dumps, dbapi_connection)


def create_engine_for(url: str) -> Engine:
    """A new engine for ``url``, with the SQLite pragmas or PostgreSQL JSON encoder the store relies on."""
    url = checked_url(url)
    try:
        engine = create_engine(url, pool_pre_ping=True)
    except NoSuchModuleError:
        raise AnomalyError(
            f"database URL {hide_password(url)}: SQLAlchemy has no dialect or driver "
            f"{make_url(url).drivername!r} (PostgreSQL is postgresql://, SQLite sqlite:///)"
        ) from None
    except ImportError as exc:
        raise AnomalyError(
            f"database URL {hide_password(url)} needs the Python package {exc.name!r}, which is not installed"
        ) from None
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    elif engine.dialect.driver == "psycopg":
        event.listen(engine, "connect", _postgres_json)
    log.info("database %s", hide_password(url))
    return engine


@contextmanager
def user_errors(url: str) -> Iterator[None]:
    """Turn a failure to reach or use the database into a one-line, password-free AnomalyError."""
    try:
        yield
    except DBAPIError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig is not None else type(exc).__name__
        raise AnomalyError(f"database {hide_password(url)}: {scrub(reason, url_secrets(url))}") from None


def ensure_current(engine: Engine) -> None:
    """Raise AnomalyError unless the database's schema is exactly at the migrations' head."""
    from anomaly.store.migrate import current_revision, head_revision, known_revision

    shown = hide_password(engine.url)
    current = current_revision(engine)
    head = head_revision()
    if current == head:
        return
    if current is None:
        raise AnomalyError(f"database {shown} has no anomaly schema yet: run `anomaly db upgrade`")
    if not known_revision(current):
        raise AnomalyError(
            f"database {shown} is at revision {current}, which this version of anomaly does not know; "
            "it was migrated by newer code"
        )
    raise AnomalyError(f"database {shown} is at revision {current}, behind {head}: run `anomaly db upgrade`")


def get_engine(url: str | None = None) -> Engine:
    """The shared engine for ``url`` (default: the configured one), checked once against head."""
    url = url or database_url()
    with _engines_lock:
        engine = _engines.get(url)
        if engine is None:
            engine = create_engine_for(url)
            try:
                ensure_current(engine)
            except AnomalyError:
                engine.dispose()
                raise
            _engines[url] = engine
    return engine
