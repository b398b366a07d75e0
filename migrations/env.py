"""Alembic environment: migrates the connection handed over by states.db.upgrade."""

from __future__ import annotations

from alembic import context

from states.models import Base

config = context.config
connection = config.attributes.get("connection")
if connection is None:  # pragma: no cover - only states.db.upgrade runs migrations
    raise RuntimeError("run migrations through `campaign db upgrade`")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
