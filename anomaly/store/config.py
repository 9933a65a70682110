"""Where the database is: one URL, found the same way by the app, the CLI and Alembic.

The URL is ``[database] url`` of the configuration (``anomaly.settings``: ``ANOMALY_DATABASE_URL`` or
``ANOMALY_DATABASE_URL_FILE``, else the config file), by default a SQLite file ``anomaly.db`` in the
working directory. URLs are only ever shown through ``hide_password`` so secrets stay out of logs and errors.

``postgres://`` (as Heroku and many hosts write it) and a bare ``postgresql://`` are read as
``postgresql+psycopg://``: psycopg 3 is the PostgreSQL driver installed with anomaly, while SQLAlchemy
knows no ``postgres`` dialect and, before 2.1, picks psycopg2 for a bare ``postgresql``.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING
from urllib.parse import quote, unquote

from anomaly import settings
from anomaly.errors import AnomalyError
from anomaly.settings import CONFIG_ENV, DEFAULT_URL  # noqa: F401  (where callers have always found them)

if TYPE_CHECKING:
    from sqlalchemy.engine import URL

(URL_ENV, _) = settings.env_names("database.url")
POSTGRES_DRIVER = "postgresql+psycopg"

# For text SQLAlchemy cannot parse or would misread: the password runs from the user name's ':' to
# the last '@' (SQLAlchemy stops at the first, so an unescaped '@' would push the rest into the host).
_USERINFO = re.compile(r"(://[^:/@\s]*:)(\S*)@")
_SECRET_PARAM = re.compile(r"pass|secret|token", re.IGNORECASE)
_QUERY_SECRET = re.compile(r"([?&][^=&\s]*(?:pass|secret|token)[^=&\s]*=)([^&\s]*)", re.IGNORECASE)


def _parsed(url: str | URL) -> URL | None:
    """SQLAlchemy's reading of ``url``, or None where it cannot read it or would put part of the password in the host.

    Also None without SQLAlchemy (an install without the ``store`` extra, which reaches no database):
    the masks below then read the URL as text, as they do any URL SQLAlchemy cannot parse.
    """
    try:
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError
    except ModuleNotFoundError:
        return None
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        return None
    if parsed.password is not None and "@" in f"{parsed.host or ''}{parsed.database or ''}":
        return None
    return parsed


def _mask_text(url: str) -> str:
    return _QUERY_SECRET.sub(r"\1***", _USERINFO.sub(r"\1***@", url))


def hide_password(url: str | URL) -> str:
    """Render ``url`` with its password and secret query values (``?password=``) replaced by ``***``."""
    parsed = _parsed(url)
    if parsed is None:
        return _mask_text(str(url))
    return _QUERY_SECRET.sub(r"\1***", parsed.render_as_string(hide_password=True))


def url_secrets(url: str) -> set[str]:
    """Every form of ``url``'s secrets (as written and decoded) that a driver's message could repeat."""
    found = {value for _, value in _QUERY_SECRET.findall(url)}
    written = _USERINFO.search(url)
    if written:
        found |= {written[2], unquote(written[2])}
    parsed = _parsed(url)
    if parsed is not None:
        found.add(parsed.password or "")
        # A password equal to the user name shows with the name, which every message needs; masking it would only garble.
        found.discard(parsed.username)
        for key, value in parsed.query.items():
            if _SECRET_PARAM.search(key):
                found |= {value} if isinstance(value, str) else set(value)
    return {form for secret in found if secret for form in (secret, quote(secret, safe=""))}


def scrub(text: str, secrets: set[str]) -> str:
    """``text`` with each secret of 4 or more characters replaced by ``***``, longest first.

    Shorter strings turn up in any sentence, so replacing them would garble the message while
    hiding nothing that could not be guessed.
    """
    for secret in sorted(secrets, key=len, reverse=True):
        if len(secret) >= 4:
            text = text.replace(secret, "***")
    return text


def checked_url(url: str) -> str:
    """``url`` as the store will use it, or an AnomalyError saying what to fix, with the password hidden.

    Checked before any connection: a misread URL fails later with the driver naming the wrong
    host, which for an unescaped '@' in the password is the password's tail.
    """
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    shown = hide_password(url)
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise AnomalyError(f"not a database URL: {shown}") from None
    except ValueError:  # SQLAlchemy's int() of the port, which an '@' in the password can shift
        parsed = None
    # SQLAlchemy ends the password at its first '@': a URL that reads well only with the password
    # running to the last one has an '@' in its password.
    if _parsed(url) is None and (parsed is not None or _parsed(_mask_text(url)) is not None):
        raise AnomalyError(f"database URL {shown}: write each '@' in the password as %40")
    if parsed is None or (parsed.port is not None and not 0 < parsed.port < 65536):
        raise AnomalyError(f"database URL {shown}: the port must be a number from 1 to 65535")
    if parsed.drivername in ("postgres", "postgresql"):
        return parsed.set(drivername=POSTGRES_DRIVER).render_as_string(hide_password=False)
    return url


def database_url() -> str:
    """The database URL to use now (read on every call so tests and the CLI can change it)."""
    return checked_url(settings.load().settings.database.url)


def configured_secrets() -> set[str]:
    """The configured database URL's secrets, for a last scrub of any message; none if the config cannot be read."""
    url = settings.raw_secrets().get("database.url")
    return url_secrets(url) if url else set()
