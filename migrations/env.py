"""Alembic environment: the same database URL as the app, the ORM metadata as the target."""

from __future__ import annotations

from alembic import context

from anomaly.store.config import database_url
from anomaly.store.engine import create_engine_for
from anomaly.store.schema import Base, UtcDateTime

# Tables in the same database that belong to other libraries (APScheduler's job store).
FOREIGN_TABLES = {"apscheduler_jobs"}


def include_object(obj, name, type_, reflected, compare_to) -> bool:
    return not (type_ == "table" and name in FOREIGN_TABLES)


def render_item(type_, obj, autogen_context):
    """Write the app's UTC timestamp type as the plain column type it stores, keeping scripts standalone."""
    if type_ == "type" and isinstance(obj, UtcDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def _configure(**kwargs) -> None:
    context.configure(
        target_metadata=Base.metadata,
        include_object=include_object,
        render_item=render_item,
        render_as_batch=True,
        compare_type=True,
        **kwargs,
    )


def run_migrations() -> None:
    url = context.config.attributes.get("url") or database_url()
    if context.is_offline_mode():
        _configure(url=url, literal_binds=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = create_engine_for(url)
    try:
        with engine.connect() as connection:
            _configure(connection=connection)
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()


run_migrations()
