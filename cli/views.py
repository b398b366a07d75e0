"""Commands that show: status, explain, the audit log and the HTML reports."""

from __future__ import annotations

import datetime as dt
import json
import sys
from functools import partial
from pathlib import Path

import click
from sqlalchemy import select
from sqlalchemy.orm import Session

from cli import human, progress
from cli.app import (
    App,
    at_option,
    cli,
    emit,
    json_option,
    pass_app,
)
from states import anchors, audit
from states.errors import BadInput, NotFound
from states.models import Branch, Campaign, TransitionLog
from states.status import branch_view, explain_view, member_view, summary


@cli.command()
@click.argument("campaign")
@click.option("--branch", default=None)
@click.option("--member", default=None)
@at_option
@json_option
@pass_app
def status(app: App, campaign: str, branch: str | None, member: str | None, at_text: str | None, as_json: bool) -> None:
    """Where things stand: the campaign, one branch, or one member (JSON only with --json)."""
    at = app.at(at_text, campaign)
    lang, tz = app.locale, app.timezone(campaign)
    with app.read() as session:
        if member:
            if as_json:
                emit(member_view(session, campaign, member, at), True, str)
            else:
                click.echo(human.member(explain_view(session, campaign, member, at), tz, lang))
        elif branch:
            view = branch_view(session, campaign, branch, at)
            found = session.get(Branch, branch)
            emit(view, as_json, lambda v: human.branch(v, found.name if found else None, lang))
        else:
            emit(summary(session, campaign, at), as_json, lambda d: human.summary(d, at, tz, lang))


@cli.command()
@click.argument("campaign")
@click.option("--member", required=True)
@at_option
@json_option
@pass_app
def explain(app: App, campaign: str, member: str, at_text: str | None, as_json: bool) -> None:
    """The member's state and every unmet condition of its next step, with figures."""
    at = app.at(at_text, campaign)
    tz = app.timezone(campaign)
    with app.read() as session:
        emit(explain_view(session, campaign, member, at), as_json, lambda v: human.member(v, tz, app.locale))


# -- operator actions --------------------------------------------------------------------------------------------



def _instant(value: dt.datetime | None) -> str | None:
    if value is None:
        return None
    return value.isoformat() if value.tzinfo else value.isoformat() + "+00:00"


def _verify(app: App, session: Session, anchor_file: Path | None) -> None:
    """Check the chain under the key, and that every anchor of its head kept outside is still on it: those of this
    database since its last restore in the service's anchor file (when it exists), or those of this chain in the
    file given (which must hold one: if none is of this chain, its newest line is checked, and fails)."""
    head = audit.head(session)
    path = anchor_file or app.settings.audit_anchors
    found: list[audit.Head] = []
    if anchor_file is not None or path.exists():
        # A file given may come from elsewhere (a Prefect artifact, a copy off the machine): any database's line of
        # this chain counts; the service's own file holds anchors of several databases, only this one's count.
        db = None if anchor_file is not None else anchors.database_label(app.engine.url)
        found, newest = anchors.read(path, db, head.chain if head else None)
        if anchor_file is not None and not found:
            if newest is None:
                raise BadInput(zh=f"锚点文件 {path} 中没有锚点", en=f"anchor file {path} holds no anchor")
            found = [newest]
    verdict = audit.verify(session, app.audit_key, found)
    say = partial(human.say, app.locale)
    if verdict.broken:
        click.echo(say(f"审计链在区块 {verdict.broken} 处断裂（此前 {verdict.checked} 个区块完好）：{verdict.why_zh}",
                       f"audit chain broken at block {verdict.broken} (after {verdict.checked} good blocks): {verdict.why}"),
                   err=True)
        sys.exit(1)
    if found:
        where = say(f"已核对 {len(found)} 个锚点，最新的在封印 {found[-1].seal_id}（{path}）",
                    f"{len(found)} anchors checked, the latest at seal {found[-1].seal_id} ({path})")
    elif path.exists():
        where = say(f"{path} 中没有本链的锚点", f"no anchor of this chain in {path}")
    else:
        where = say(f"没有锚点文件 {path}", f"no anchor file at {path}")
    digest, seal = (verdict.head.digest, verdict.head.seal_id) if verdict.head else ("-", "-")
    # The head is worth recording outside the database too: only that anchors the chain's end.
    click.echo(say(f"审计链完好：{verdict.checked} 个封印块，最新 {digest}（封印 {seal}）；{where}",
                   f"audit chain intact: {verdict.checked} sealed blocks, head {digest} (seal {seal}); {where}"))
    if verdict.pending:
        _warn_pending(app, verdict.pending)


def _warn_pending(app: App, pending: tuple[audit.Pending, ...]) -> None:
    """Lanes not merged yet are intact as far as they go, but nothing outside them vouches that they are whole: said
    on stderr, every time, with what ends it (exit 0: a running sweep has them too; docs/reliability.md)."""
    sweeps = ", ".join(sorted({p.sweep for p in pending}))
    entries = sum(p.entries for p in pending)
    click.echo("campaign: " + human.say(
        app.locale,
        f"注意：扫描 {sweeps} 的 {len(pending)} 条通道（{entries} 条记录）尚未并入主链。其封印已核对无误，"
        "但主链与锚点还不能证明它们完整（整条删去不会被发现）。扫描仍在运行时如此；若扫描中途停止，"
        "该活动的下一次扫描（重新运行即可）会将其并入。",
        f"note: {len(pending)} lanes ({entries} entries) of sweep {sweeps} are not merged into the main chain yet. "
        "Their seals check, but neither the main chain nor an anchor vouches that they are whole yet (removing one "
        "entirely would go unseen). So it is while a sweep runs; if the sweep stopped before its end, the campaign's "
        "next sweep (re-run it) merges them.",
    ), err=True)


@cli.command("audit")
@click.argument("campaign")
@click.option("--member", default=None)
@click.option("--branch", default=None)
@click.option("--verify", is_flag=True, help="recompute the keyed seal chain; name the first broken block")
@click.option("--anchor", "anchor_file", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="with --verify: an anchor file (default: the service's own, when it exists)")
@json_option
@pass_app
def audit_cmd(
    app: App, campaign: str, member: str | None, branch: str | None, verify: bool, anchor_file: Path | None,
    as_json: bool,
) -> None:
    """The log of every change and every operator action."""
    if anchor_file is not None and not verify:
        raise BadInput(zh="--anchor 须与 --verify 一起使用", en="--anchor goes with --verify")
    with app.read() as session:
        if session.get(Campaign, campaign) is None:
            raise NotFound(zh=f"没有活动 {campaign!r}", en=f"unknown campaign {campaign!r}")
        if verify:
            _verify(app, session, anchor_file)
            return
        query = select(TransitionLog).where(TransitionLog.campaign_key.in_((campaign, ""))).order_by(TransitionLog.id)
        if member:
            query = query.where(TransitionLog.member_id == member)
        if branch:
            query = query.where(TransitionLog.branch_id == branch)
        entries = [
            {
                "at": _instant(e.at), "recorded_at": _instant(e.recorded_at),
                "member_id": e.member_id, "branch_id": e.branch_id, "from": e.from_state, "to": e.to_state,
                "cause": e.cause, "actor": e.actor, "reason": e.reason, "flow_run_id": e.flow_run_id,
            }
            for e in session.scalars(query)
        ]
    if as_json:
        click.echo(json.dumps(entries, ensure_ascii=False))
        return
    tz = app.timezone(campaign)
    for e in entries:
        click.echo(human.audit_line(e, tz, app.locale))


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
    with app.read() as session, progress.tally(human.say(app.locale, "已生成页面", "pages rendered")) as tick:
        written = write_report(session, campaign, target, at, on_page=tick)
    click.echo(human.say(
        app.locale,
        f"已写入 {len(written)} 个页面：{target}（打开 {target / 'index.html'}）",
        f"{len(written)} pages written to {target} (open {target / 'index.html'})",
    ))
