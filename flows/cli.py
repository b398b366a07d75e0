"""The `campaign` command line: thin over states/, one place mapping errors to exit codes (0, 1 refused, 2 bad input)."""

from __future__ import annotations

import datetime as dt
import getpass
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click
from sqlalchemy import Engine, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from states import audit
from states.clock import parse_instant
from states.csvio import read_text
from states.db import ensure_schema, make_engine, upgrade
from states.errors import CampaignError, NotFound
from states.models import AuditSeal, Campaign, TransitionLog
from states.settings import Settings, load_settings
from states.status import branch_view, member_view, summary

DEFAULT_TZ = "Asia/Shanghai"


class App:
    """What every command needs: settings and an engine whose schema is current."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._engine: Engine | None = None

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            self._engine = make_engine(self.settings.database_url)
            ensure_schema(self._engine)
        return self._engine

    @contextmanager
    def write(self, at: dt.datetime) -> Iterator[Session]:
        """One transaction, sealed in the audit chain before it commits."""
        with Session(self.engine, expire_on_commit=False) as session, session.begin():
            yield session
            audit.seal(session, at)

    @contextmanager
    def read(self) -> Iterator[Session]:
        with Session(self.engine, expire_on_commit=False) as session:
            yield session

    def timezone(self, key: str | None) -> str:
        with self.read() as session:
            if key is not None:
                campaign = session.get(Campaign, key)
                if campaign is None:
                    raise NotFound(f"unknown campaign {key!r}")
                return campaign.timezone
            first = session.scalar(select(Campaign.timezone).order_by(Campaign.loaded_at.desc()).limit(1))
            return first or DEFAULT_TZ

    def at(self, text: str | None, key: str | None = None) -> dt.datetime:
        return parse_instant(text, self.timezone(key))


def _appraisal() -> Any:
    from states import appraisal

    return appraisal


def _operations() -> Any:
    from states import operations

    return operations


def _with_prefect(what: str, action: Callable[[], object]) -> None:
    """Where a Prefect server is configured (PREFECT_API_URL), tell it too; the database change stands either way."""
    import os

    if not os.environ.get("PREFECT_API_URL"):
        return
    try:
        action()
    except Exception as exc:  # noqa: BLE001 - the server is an extra; its failure must not undo the command
        click.echo(f"campaign: warning: could not {what} in Prefect: {' '.join(str(exc).split())[:200]}", err=True)


def _schedule(key: str, engine: Engine) -> None:
    from flows.schedule import schedule_deadlines

    schedule_deadlines(key, engine)


def _request_approval(campaign: str, branch_id: str, meeting_id: int | None) -> None:
    assert meeting_id is not None
    from flows.approval import request_approval

    request_approval(campaign, branch_id, meeting_id)


def emit(data: Any, as_json: bool, human: Callable[[Any], str]) -> None:
    if as_json:
        click.echo(json.dumps(data, ensure_ascii=False, indent=None, default=str))
    else:
        click.echo(human(data))


def default_actor() -> str:
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no login name in some containers
        return "unknown"


at_option = click.option("--at", "at_text", metavar="T", help="ISO 8601 time (default now; no offset = campaign's timezone)")
json_option = click.option("--json", "as_json", is_flag=True, help="print JSON")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.pass_context
def cli(ctx: click.Context) -> None:
    """Campaign orchestration: members and branches through study → analysis → rectification → consolidation → pledge."""
    ctx.obj = App(load_settings())


pass_app = click.make_pass_decorator(App)


# -- set-up ------------------------------------------------------------------------------------------------------


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

    source = read_text(file)
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
    at = parse_instant(at_text, parsed.timezone)
    with app.write(at) as session:
        load_plan(session, parsed, actor or default_actor(), at)
    click.echo(parsed.key)
    _with_prefect("schedule its deadline runs", lambda: _schedule(parsed.key, app.engine))


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

    source = read_text(file)
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
    source = read_text(file)
    at = app.at(at_text, campaign)
    with app.write(at) as session:
        result = _appraisal().import_ballot(session, campaign, source, actor or default_actor(), at)
    if result.unchanged:
        click.echo(f"{file}: already recorded, nothing changed")
        return
    click.echo(f"branch {result.branch_id}: {len(result.ratings)} ratings stand, {len(result.void)} void")
    for member_id in result.void:
        click.echo(f"  {member_id}: no rating had more than half of the votes cast — hold the ballot again")
    if result.ratings:
        click.echo("  awaiting the upper committee's approval (campaign approve)")
        _with_prefect(
            "start its approval flow", lambda: _request_approval(campaign, result.branch_id, result.meeting_id)
        )


# -- the sweep and what it shows ---------------------------------------------------------------------------------


@cli.command()
@click.argument("campaign")
@at_option
@click.option("--dry-run", is_flag=True, help="report what would happen, change nothing")
@json_option
@click.option("--actor", default="system")
@pass_app
def sweep(app: App, campaign: str, at_text: str | None, dry_run: bool, as_json: bool, actor: str) -> None:
    """Fire every due deadline in order, advance all that may advance, queue the notices due."""
    from states.sweep import sweep as run_sweep

    at = app.at(at_text, campaign)
    show = sys.stderr.isatty() and not dry_run

    def progress(done: int, total: int) -> None:
        click.echo(f"\r  sweep {done}/{total} units", nl=done == total, err=True)

    result = run_sweep(
        app.engine, campaign, at, actor=actor, dry_run=dry_run,
        branches_per_chunk=app.settings.chunk_branches, progress=progress if show else None,
    )
    data = result.as_json()

    def human(d: dict[str, Any]) -> str:
        lead = "dry run (nothing changed): " if dry_run else ""
        fired = ", ".join(d["fired"]) or "nothing"
        return (
            f"{lead}fired: {fired}\n"
            f"advanced: {d['advanced']['members']} members, {d['advanced']['branches']} branches\n"
            f"stuck: {d['stuck']['members']} members, {d['stuck']['branches']} branches"
        )

    emit(data, as_json, human)


def _human_member(view: dict[str, Any]) -> str:
    lines = [
        f"{view['member_id']} {view['name']} (branch {view['branch_id']}): {view['state']}"
        + ("  — STUCK" if view["stuck"] else "")
    ]
    if view.get("prior_state"):
        lines.append(f"  returns to: {view['prior_state']}")
    if view.get("next"):
        if view["unmet"]:
            lines.append(f"  to move on to {view['next']}, still needed:")
            for item in view["unmet"]:
                lines.append(f"    {item['condition']}: have {item['have']}, need {item['need']}")
        else:
            lines.append(f"  every condition for {view['next']} holds")
    if "appraisal" in view:
        a = view["appraisal"]
        lines.append(
            f"  appraisal: rating {a['rating'] or '—'}, approved {a['approved']}, final {a['final']}"
            + (", objection pending" if a["objection_pending"] else "")
            + (", excellent" if a["excellent"] else "")
        )
    if "disposition" in view:
        lines.append(f"  organisational disposition: {view['disposition']}")
    return "\n".join(lines)


@cli.command()
@click.argument("campaign")
@click.option("--branch", default=None)
@click.option("--member", default=None)
@at_option
@json_option
@pass_app
def status(app: App, campaign: str, branch: str | None, member: str | None, at_text: str | None, as_json: bool) -> None:
    """Where things stand."""
    at = app.at(at_text, campaign)
    with app.read() as session:
        if member:
            emit(member_view(session, campaign, member, at), as_json, _human_member)
        elif branch:
            view = branch_view(session, campaign, branch, at)
            emit(view, as_json, lambda v: json.dumps(v, ensure_ascii=False, indent=2))
        else:
            data = summary(session, campaign, at)

            def human(d: dict[str, Any]) -> str:
                members = ", ".join(f"{s} {n}" for s, n in d["members"].items())
                branches = ", ".join(f"{s} {n}" for s, n in d["branches"].items())
                return (
                    f"{d['campaign']}: phase {d['phase']}\n  members: {members}\n  branches: {branches}\n"
                    f"  stuck: {d['stuck']['members']} members, {d['stuck']['branches']} branches"
                )

            emit(data, as_json, human)


@cli.command()
@click.argument("campaign")
@click.option("--member", required=True)
@at_option
@json_option
@pass_app
def explain(app: App, campaign: str, member: str, at_text: str | None, as_json: bool) -> None:
    """The member's state and every unmet condition of its next step, with figures."""
    at = app.at(at_text, campaign)
    with app.read() as session:
        emit(member_view(session, campaign, member, at), as_json, _human_member)


# -- operator actions --------------------------------------------------------------------------------------------


@cli.command()
@click.argument("campaign")
@click.option("--member", "members", multiple=True)
@click.option("--branch", "branches", multiple=True)
@click.option("--all-stuck", is_flag=True)
@click.option("--actor", required=True)
@click.option("--reason", required=True)
@at_option
@json_option
@pass_app
def retry(
    app: App, campaign: str, members: tuple[str, ...], branches: tuple[str, ...], all_stuck: bool,
    actor: str, reason: str, at_text: str | None, as_json: bool,
) -> None:
    """Re-check and advance, as far as their conditions allow."""
    if not (members or branches or all_stuck):
        raise click.UsageError("name --member, --branch or --all-stuck")
    at = app.at(at_text, campaign)
    with app.write(at) as session:
        result = _operations().retry(
            session, campaign, actor, reason, at, members=list(members) or None,
            branches=list(branches) or None, all_stuck=all_stuck,
        )
    data = {
        "advanced": result.advanced,
        "held": result.held,
        "moved": {"members": result.moved_members, "branches": result.moved_branches},
    }

    def human(d: dict[str, Any]) -> str:
        lines = [f"moved: {d['moved']['members']} members, {d['moved']['branches']} branches"]
        for member_id, (before, after) in d["advanced"].items():
            lines.append(f"  {member_id}: {before} → {after}")
        for subject, held in d["held"].items():
            unmet = "; ".join(f"{u['condition']} {u['have']}/{u['need']}" for u in held.get("unmet", []))
            lines.append(f"  {subject}: still {held['state']}" + (f" — {held['why']}" if "why" in held else "") + (f" ({unmet})" if unmet else ""))
        return "\n".join(lines)

    emit(data, as_json, human)
    if not all_stuck and result.moved_members == 0 and result.moved_branches == 0:
        click.echo("nothing named could advance", err=True)
        sys.exit(1)


def _single(action: Callable[[Session, dt.datetime], str | None], app: App, campaign: str, at_text: str | None, ok: str) -> None:
    at = app.at(at_text, campaign)
    with app.write(at) as session:
        state = action(session, at)
    click.echo(ok.format(state=state))


@cli.command()
@click.argument("campaign")
@click.option("--member", required=True)
@click.option("--actor", required=True)
@click.option("--reason", required=True)
@click.option("--undo", is_flag=True, help="reverse the exemption")
@at_option
@pass_app
def exempt(app: App, campaign: str, member: str, actor: str, reason: str, undo: bool, at_text: str | None) -> None:
    """Exempt a member (posted abroad, long-term ill …), or reverse it."""
    _single(lambda s, at: _operations().exempt(s, campaign, member, actor, reason, at, undo=undo), app, campaign, at_text, f"{member}: {{state}}")


@cli.command()
@click.argument("campaign")
@click.option("--member", required=True)
@click.option("--actor", required=True)
@click.option("--reason", required=True)
@at_option
@pass_app
def refer(app: App, campaign: str, member: str, actor: str, reason: str, at_text: str | None) -> None:
    """A discipline case pauses the member."""
    _single(lambda s, at: _operations().refer(s, campaign, member, actor, reason, at), app, campaign, at_text, f"{member}: {{state}}")


@cli.command()
@click.argument("campaign")
@click.option("--member", required=True)
@click.option("--actor", required=True)
@click.option("--reason", required=True)
@at_option
@pass_app
def resume(app: App, campaign: str, member: str, actor: str, reason: str, at_text: str | None) -> None:
    """The member resumes where it was."""
    _single(lambda s, at: _operations().resume(s, campaign, member, actor, reason, at), app, campaign, at_text, f"{member}: {{state}}")


@cli.command()
@click.argument("campaign")
@click.option("--member", required=True)
@click.option("--confirm", "confirm", flag_value=True, default=None)
@click.option("--accept-late", "confirm", flag_value=False)
@click.option("--actor", required=True)
@click.option("--reason", required=True)
@at_option
@pass_app
def withdrawal(app: App, campaign: str, member: str, confirm: bool | None, actor: str, reason: str, at_text: str | None) -> None:
    """Confirm a pending withdrawal, or accept a late written application."""
    if confirm is None:
        raise click.UsageError("name --confirm or --accept-late")
    _single(
        lambda s, at: _appraisal().withdrawal(s, campaign, member, actor, reason, at, confirm=confirm),
        app, campaign, at_text,
        f"{member}: withdrawal confirmed, awaiting the upper committee's approval" if confirm else f"{member}: {{state}}",
    )


@cli.command()
@click.argument("campaign")
@click.option("--branch", required=True)
@click.option("--actor", required=True)
@click.option("--reject", is_flag=True)
@click.option("--reason", default="")
@at_option
@pass_app
def approve(app: App, campaign: str, branch: str, actor: str, reject: bool, reason: str, at_text: str | None) -> None:
    """The upper committee's decision on the branch's current ratings and confirmed withdrawals."""
    at = app.at(at_text, campaign)
    with app.write(at) as session:
        result = _appraisal().approve(session, campaign, branch, actor, at, reject=reject, reason=reason)
    if not (result.approved or result.rejected or result.withdrawn):
        click.echo(f"branch {branch}: nothing awaits approval", err=True)
        sys.exit(1)
    if reject:
        click.echo(f"branch {branch}: {len(result.rejected)} ratings rejected — the branch reviews again")
    else:
        click.echo(f"branch {branch}: {len(result.approved)} ratings approved, publicity starts; {len(result.withdrawn)} withdrawn")


@cli.command()
@click.argument("campaign")
@click.option("--member", "members", multiple=True, required=True)
@click.option("--actor", required=True)
@at_option
@pass_app
def excellent(app: App, campaign: str, members: tuple[str, ...], actor: str, at_text: str | None) -> None:
    """Select qualified members whose rating is final as excellent (优秀共产党员), within the quota."""
    at = app.at(at_text, campaign)
    with app.write(at) as session:
        chosen = _appraisal().select_excellent(session, campaign, list(members), actor, at)
    click.echo(f"selected as excellent: {', '.join(chosen) or 'nobody new'}")


@cli.command("object")
@click.argument("campaign")
@click.option("--member", required=True)
@click.option("--actor", required=True)
@click.option("--reason", required=True)
@at_option
@pass_app
def object_(app: App, campaign: str, member: str, actor: str, reason: str, at_text: str | None) -> None:
    """An objection during publicity."""
    _single(lambda s, at: _appraisal().object_to(s, campaign, member, actor, reason, at), app, campaign, at_text,
            f"{member}: objection recorded, publicity held open until it is resolved")


@cli.command()
@click.argument("campaign")
@click.option("--member", required=True)
@click.option("--upheld", "upheld", flag_value=True, default=None)
@click.option("--dismissed", "upheld", flag_value=False)
@click.option("--actor", required=True)
@click.option("--reason", default="")
@at_option
@pass_app
def resolve(app: App, campaign: str, member: str, upheld: bool | None, actor: str, reason: str, at_text: str | None) -> None:
    """The outcome of an objection."""
    if upheld is None:
        raise click.UsageError("name --upheld or --dismissed")
    _single(lambda s, at: _appraisal().resolve(s, campaign, member, upheld, actor, reason, at), app, campaign, at_text,
            f"{member}: objection " + ("upheld — back to a new ballot" if upheld else "dismissed"))


# -- the log -----------------------------------------------------------------------------------------------------


@cli.command("audit")
@click.argument("campaign")
@click.option("--member", default=None)
@click.option("--branch", default=None)
@click.option("--verify", is_flag=True, help="recompute the seal chain; name the first broken block")
@json_option
@pass_app
def audit_cmd(app: App, campaign: str, member: str | None, branch: str | None, verify: bool, as_json: bool) -> None:
    """The log of every change and every operator action."""
    with app.read() as session:
        if session.get(Campaign, campaign) is None:
            raise NotFound(f"unknown campaign {campaign!r}")
        if verify:
            checked, broken = audit.verify(session)
            if broken:
                click.echo(f"audit chain broken at block {broken} (after {checked} good blocks)", err=True)
                sys.exit(1)
            head = session.scalar(select(AuditSeal.digest).order_by(AuditSeal.id.desc()).limit(1))
            # The head is worth recording outside the database: only that anchors the chain's end.
            click.echo(f"audit chain intact: {checked} sealed blocks, head {head or '-'}")
            return
        query = select(TransitionLog).where(TransitionLog.campaign_key.in_((campaign, ""))).order_by(TransitionLog.id)
        if member:
            query = query.where(TransitionLog.member_id == member)
        if branch:
            query = query.where(TransitionLog.branch_id == branch)
        entries = [
            {
                "at": e.at.isoformat() if e.at.tzinfo else e.at.isoformat() + "+00:00",
                "member_id": e.member_id, "branch_id": e.branch_id, "from": e.from_state, "to": e.to_state,
                "cause": e.cause, "actor": e.actor, "reason": e.reason, "flow_run_id": e.flow_run_id,
            }
            for e in session.scalars(query)
        ]
    if as_json:
        click.echo(json.dumps(entries, ensure_ascii=False))
        return
    for e in entries:
        subject = e["member_id"] or e["branch_id"] or "-"
        move = f"{e['from']} → {e['to']}" if e["from"] != e["to"] else (e["to"] or "")
        click.echo(f"{e['at']}  {subject:<10} {move:<32} {e['cause']:<20} {e['actor']}  {e['reason']}")


@cli.group()
def notify() -> None:
    """Notices: deliver what is queued."""


@notify.command("dispatch")
@click.option("--channel", type=click.Choice(["file", "smtp"]), default="file", show_default=True)
@click.option("--batch", default=500, show_default=True)
@pass_app
def notify_dispatch(app: App, channel: str, batch: int) -> None:
    """Deliver pending notices; exit 1 if any could not be delivered (it stays queued and is tried again)."""
    from flows.notify import dispatch, pending_count

    with app.read() as session:
        total = pending_count(session)
    if total == 0:
        click.echo("nothing to deliver")
        return
    with click.progressbar(length=total, label=f"delivering {total} notices", file=sys.stderr) as bar:
        result = dispatch(app.engine, app.settings, channel, batch=batch, progress=bar.update)
    where = app.settings.outbox_dir if channel == "file" else f"{app.settings.smtp_host}:{app.settings.smtp_port}"
    click.echo(f"{result.sent} delivered ({where}), {result.undeliverable} undeliverable (no address), {result.failed} failed")
    for error in (result.errors or [])[:5]:
        click.echo(f"  {error}", err=True)
    if result.failed:
        sys.exit(1)


@cli.command()
@click.argument("campaign")
@click.option("--out", "out_dir", type=click.Path(path_type=Path), default=None, help="default: var/reports/CAMPAIGN")
@at_option
@pass_app
def report(app: App, campaign: str, out_dir: Path | None, at_text: str | None) -> None:
    """Write the campaign's reports as HTML: index.html and one page per branch."""
    from flows.report import write_report

    at = app.at(at_text, campaign)
    target = out_dir or app.settings.report_dir / campaign
    with app.read() as session:
        written = write_report(session, campaign, target, at)
    click.echo(f"{len(written)} pages written to {target} (open {target / 'index.html'})")


def main() -> None:
    """Entry point: a user's mistake is one line on stderr and exit 1 or 2, never a traceback."""
    try:
        cli.main(standalone_mode=False)
    except CampaignError as exc:
        click.echo(f"campaign: {exc}", err=True)
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(1)
    except click.ClickException as exc:
        exc.show()
        sys.exit(2)
    except OperationalError as exc:
        click.echo(f"campaign: the database refused: {str(exc.orig).splitlines()[0]}", err=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
