"""Commands that show: status, explain, the audit log and the HTML reports."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click
from sqlalchemy import select

from cli.app import (
    App,
    at_option,
    cli,
    emit,
    json_option,
    pass_app,
)
from states import audit
from states.errors import NotFound
from states.models import AuditSeal, Campaign, TransitionLog
from states.status import branch_view, member_view, summary


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



@cli.command()
@click.argument("campaign")
@click.option("--out", "out_dir", type=click.Path(path_type=Path), default=None, help="default: var/reports/CAMPAIGN")
@at_option
@pass_app
def report(app: App, campaign: str, out_dir: Path | None, at_text: str | None) -> None:
    """Write the campaign's reports as HTML: index.html and one page per branch."""
    from reports.report import write_report

    at = app.at(at_text, campaign)
    target = out_dir or app.settings.report_dir / campaign
    with app.read() as session:
        written = write_report(session, campaign, target, at)
    click.echo(f"{len(written)} pages written to {target} (open {target / 'index.html'})")
