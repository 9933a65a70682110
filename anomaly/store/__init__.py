"""The SQL store: model registry, training runs, scored events and rejected messages.

SQLite is the embedded default and PostgreSQL what production runs; the schema is owned by the
Alembic migrations in ``migrations/`` and mirrored by the ORM classes in ``schema``.
"""

# The verdicts an operator gives an event. Here, not in ``schema``, so ``anomaly events label --help``
# can offer them without importing SQLAlchemy.
LABELS = ("normal", "anomaly")
