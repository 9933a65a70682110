"""Where the database is: one URL, found the same way by the app, the CLI and Alembic.

Order: ``ANOMALY_DATABASE_URL``; else ``[database] url`` in the config file (``ANOMALY_CONFIG`` or
``anomaly.toml`` in the working directory); else a SQLite file ``anomaly.db`` in the working
directory. URLs are only ever shown through ``hide_password`` so secrets stay out of logs and errors.
"""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from anomaly.errors import AnomalyError

URL_ENV = "ANOMALY_DATABASE_URL"
CONFIG_ENV = "ANOMALY_CONFIG"
CONFIG_FILE = "anomaly.toml"
DEFAULT_URL = "sqlite:///anomaly.db"

# user:password@ in anything that looks like a URL, for text SQLAlchemy cannot parse.
_USERINFO = re.compile(r"(://[^:/@\s]*:)[^@\s]*@")


def hide_password(url: str | URL) -> str:
    """Render ``url`` with its password replaced by ``***``, safe for logs and error messages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return _USERINFO.sub(r"\1***@", str(url))


def _config_file() -> Path | None:
    explicit = os.environ.get(CONFIG_ENV)
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            raise AnomalyError(f"{CONFIG_ENV} names {path}, which is not a file")
        return path
    local = Path.cwd() / CONFIG_FILE
    return local if local.is_file() else None


def _url_from_file(path: Path) -> str | None:
    try:
        config = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise AnomalyError(f"cannot read config file {path}: {exc}") from None
    url = config.get("database", {}).get("url")
    if url is not None and not isinstance(url, str):
        raise AnomalyError(f"{path}: [database] url must be a string")
    return url


def database_url() -> str:
    """The database URL to use now (read on every call so tests and the CLI can change it)."""
    url = os.environ.get(URL_ENV)
    if not url:
        path = _config_file()
        url = _url_from_file(path) if path else None
    url = url or DEFAULT_URL
    try:
        make_url(url)
    except ArgumentError:
        raise AnomalyError(f"not a database URL: {hide_password(url)}") from None
    return url
