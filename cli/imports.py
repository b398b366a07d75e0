"""`campaign roster|plan|record|ballot …`: the organisation's files in, each import one atomic act."""

from __future__ import annotations

from pathlib import Path

import click

from cli.app import (
    App,
    appraisal_ops,
    at_option,
    cli,
    default_actor,
    pass_app,
    request_approval,
    schedule_runs,
    with_prefect,
)
from readers import read_table
from states.clock import parse_instant


@cli.group()
def roster() -> None:
    """Units, branches and people."""


@roster.command("import")
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--actor", default=None, help="who imports (default: the login name)")
@at_option
@pass_app
def roster_import(app: App, file: Path, actor: str | None, at_text: str | None) -> None:
    """Add or update units, branches and members (never deletes)."""
    from states.roster import import_roster

    source = read_table(file)
    at = app.at(at_text)
    with app.write(at) as session:
        result = import_roster(session, source, actor or default_actor(), at)
    if result.unchanged:
        click.echo(f"{file}: already imported, nothing changed")
    else:
        click.echo(
            f"{file}: {result.added} added, {result.updated} updated, {result.transferred} transferred, "
            f"{result.joined} joined a running campaign"
        )


@cli.group()
def plan() -> None:
    """Campaign plans."""


@plan.command("load")
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--actor", default=None)
@at_option
@pass_app
def plan_load(app: App, file: Path, actor: str | None, at_text: str | None) -> None:
    """Create or update a campaign from a plan; prints its key."""
    from states.plan import load_plan, read_plan

    parsed, _digest = read_plan(file)
    at = parse_instant(at_text, parsed.timezone, simulation=app.settings.simulation)
    with app.write(at) as session:
        load_plan(session, parsed, actor or default_actor(), at)
    click.echo(parsed.key)
    with_prefect("schedule its deadline runs", lambda: schedule_runs(parsed.key, app.engine))


@cli.group()
def record() -> None:
    """Evidence: study hours, submissions, meetings, talks …"""


@record.command("import")
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--actor", default=None)
@at_option
@pass_app
def record_import(app: App, file: Path, actor: str | None, at_text: str | None) -> None:
    """Add evidence (atomic: one bad row rejects the whole file)."""
    from states.records import import_records

    source = read_table(file)
    at = app.at(at_text)
    with app.write(at) as session:
        result = import_records(session, source, actor or default_actor(), at)
    if result.unchanged:
        click.echo(f"{file}: already imported, nothing changed")
    else:
        click.echo(f"{file}: {result.added} records added, {result.updated} corrected")


@cli.group()
def ballot() -> None:
    """Branch member meetings' secret ballots (tallies only)."""


@ballot.command("import")
@click.argument("campaign")
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--actor", default=None)
@at_option
@pass_app
def ballot_import(app: App, campaign: str, file: Path, actor: str | None, at_text: str | None) -> None:
    """Record one branch member meeting's ballot; without quorum it is refused."""
    source = read_table(file)
    at = app.at(at_text, campaign)
    with app.write(at) as session:
        result = appraisal_ops().import_ballot(session, campaign, source, actor or default_actor(), at)
    if result.unchanged:
        click.echo(f"{file}: already recorded, nothing changed")
        return
    click.echo(f"branch {result.branch_id}: {len(result.ratings)} ratings stand, {len(result.void)} void")
    for member_id in result.void:
        click.echo(f"  {member_id}: no rating had more than half of the votes cast — hold the ballot again")
    if result.ratings:
        click.echo("  awaiting the upper committee's approval (campaign approve)")
        with_prefect(
            "start its approval flow", lambda: request_approval(campaign, result.branch_id, result.meeting_id)
        )


# -- the sweep and what it shows ---------------------------------------------------------------------------------
