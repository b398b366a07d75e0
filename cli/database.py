"""`campaign db …`: the schema and the database as a whole."""

from __future__ import annotations

import click

from cli.app import (
    App,
    cli,
    pass_app,
)
from states.db import make_engine, upgrade


@cli.group()
def db() -> None:
    """The database schema."""


@db.command("upgrade")
@pass_app
def db_upgrade(app: App) -> None:
    """Create or migrate the schema (idempotent)."""
    engine = make_engine(app.settings.database_url)
    upgrade(engine)
    click.echo(f"schema is current ({engine.url.render_as_string(hide_password=True)})")
