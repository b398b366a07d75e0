"""The migrations produce the models' schema (`Base.metadata`) on both dialects: every table, column, index and
constraint, so a model change without its migration (or a migration without its model change) fails here."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine

from states.models import Base


def test_the_migrations_produce_the_models_schema(engine: Engine) -> None:
    with engine.connect() as connection:
        # Types are left out: SQLite reflects its own spellings of them (UTCDateTime reads back as DATETIME).
        context = MigrationContext.configure(connection, opts={"compare_type": False})
        assert compare_metadata(context, Base.metadata) == []
