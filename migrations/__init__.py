"""Alembic migrations of the campaign schema (run by `campaign db upgrade`)."""
