"""The `campaign` entry point: every command module registered, and one place mapping errors to exit codes."""

from __future__ import annotations

import os
import sys

import click
from sqlalchemy.exc import OperationalError

from cli import database, decisions, imports, notify, views  # noqa: F401  (each registers its commands)
from cli.app import cli
from states.errors import CampaignError


def main() -> None:
    """Entry point: a user's mistake is one line on stderr and exit 1 or 2, never a traceback."""
    os.umask(0o077)  # what the service writes (the database, the outbox, reports, keys) is its own: private
    try:
        cli.main(standalone_mode=False)
    except CampaignError as exc:
        click.echo(f"campaign: {exc}", err=True)
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(1)
    except click.ClickException as exc:
        # click's own usage text spans lines; the contract's reason is one line
        click.echo(f"campaign: {' '.join(exc.format_message().split())}", err=True)
        sys.exit(2)
    except OperationalError as exc:
        click.echo(f"campaign: the database refused: {str(exc.orig).splitlines()[0]}", err=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
