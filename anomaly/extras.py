"""Which optional extra a missing module belongs to, so a command that needs one says how to install it.

Training, scoring and evaluating from files need only the core dependencies; the store, the
PostgreSQL driver and the Kafka scorer are extras (``pip install 'anomaly-gan[stream]'``). Their
modules are imported only inside the commands that use them, so a missing one surfaces there as a
``ModuleNotFoundError``, which the CLI turns into one line naming the extra instead of a traceback.
"""

from __future__ import annotations

PACKAGE = "anomaly-gan"

# Top-level module -> (extra, what it is, as the error names it).
_EXTRAS = {
    "sqlalchemy": ("store", "the SQL store"),
    "alembic": ("store", "the SQL store"),
    "orjson": ("store", "the SQL store"),
    "psycopg": ("postgres", "the PostgreSQL driver"),
    "kafka": ("stream", "the Kafka client"),
    "prometheus_client": ("stream", "the Prometheus client"),
    "flask": ("ui", "the review web pages"),
    "flask_wtf": ("ui", "the review web pages"),
    "waitress": ("ui", "the review web pages"),
    "jinja2": ("ui", "the HTML templates"),
}


def missing_extra(exc: ModuleNotFoundError, command: str) -> str | None:
    """The one-line install hint for ``command`` when ``exc`` is a module of an extra, else None (a real bug)."""
    module = (exc.name or "").split(".")[0]
    if module not in _EXTRAS:
        return None
    extra, what = _EXTRAS[module]
    return f"{command} needs {what}: pip install '{PACKAGE}[{extra}]'"
