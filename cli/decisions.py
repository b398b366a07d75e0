"""Commands that decide: the sweep, retries, exemptions, referrals, withdrawals, the appraisal."""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Callable

import click
from sqlalchemy.orm import Session

from cli import human, progress
from cli.app import (
    App,
    appraisal_ops,
    at_option,
    cli,
    emit,
    json_option,
    operations_ops,
    pass_app,
)


@cli.command()
@click.argument("campaign")
@at_option
@click.option("--dry-run", is_flag=True, help="report what would happen, change nothing")
@json_option
@click.option("--actor", default="system")
@pass_app
def sweep(app: App, campaign: str, at_text: str | None, dry_run: bool, as_json: bool, actor: str) -> None:
    """Fire every due deadline in order, advance all that may advance, queue the notices due.

    One sweep of a campaign at a time: while another runs (a command, or a Prefect flow's) this one is refused at
    once, changing nothing (exit 1); run it again once that one has ended."""
    from states.sweep import sweep as run_sweep

    at = app.at(at_text, campaign)
    with progress.counter(human.say(app.locale, "推进进度", "sweep")) as report:
        # A dry run changes nothing and reports at once; a real sweep may take minutes at scale.
        result = run_sweep(
            app.engine, campaign, at, seal_key=app.audit_key, actor=actor, dry_run=dry_run,
            branches_per_chunk=app.settings.chunk_branches, progress=None if dry_run or not progress.shown() else report,
        )
    if not dry_run:
        app.anchor()
    emit(result.as_json(), as_json, lambda d: human.sweep(d, dry_run, app.locale))



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
        raise click.UsageError(human.say(
            app.locale, "请指明重新检查的对象：--member、--branch 或 --all-stuck", "name --member, --branch or --all-stuck"
        ))
    at = app.at(at_text, campaign)
    with app.write(at) as session:
        result = operations_ops().retry(
            session, campaign, actor, reason, at, members=list(members) or None,
            branches=list(branches) or None, all_stuck=all_stuck,
        )
    data = {
        "advanced": result.advanced,
        "held": result.held,
        "moved": {"members": result.moved_members, "branches": result.moved_branches},
    }
    emit(data, as_json, lambda d: human.retry(d, app.locale))
    if not all_stuck and result.moved_members == 0 and result.moved_branches == 0:
        click.echo(human.say(app.locale, "campaign: 所列对象均未能推进", "campaign: nothing named could advance"), err=True)
        sys.exit(1)


def _single(
    action: Callable[[Session, dt.datetime], str | None], app: App, campaign: str, at_text: str | None,
    ok: tuple[str, str] | None = None, member: str = "",
) -> None:
    """One operator action on one member; says the state it left the member in, or `ok` (zh, en) when given."""
    at = app.at(at_text, campaign)
    with app.write(at) as session:
        state = action(session, at)
    if ok is None:
        click.echo(human.say(app.locale, f"{member}：{human.state(state, app.locale)}", f"{member}: {human.state(state, app.locale)}"))
    else:
        click.echo(human.say(app.locale, *ok))


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
    _single(lambda s, at: operations_ops().exempt(s, campaign, member, actor, reason, at, undo=undo), app, campaign, at_text, member=member)


@cli.command()
@click.argument("campaign")
@click.option("--member", required=True)
@click.option("--actor", required=True)
@click.option("--reason", required=True)
@at_option
@pass_app
def refer(app: App, campaign: str, member: str, actor: str, reason: str, at_text: str | None) -> None:
    """A discipline case pauses the member."""
    _single(lambda s, at: operations_ops().refer(s, campaign, member, actor, reason, at), app, campaign, at_text, member=member)


@cli.command()
@click.argument("campaign")
@click.option("--member", required=True)
@click.option("--actor", required=True)
@click.option("--reason", required=True)
@at_option
@pass_app
def resume(app: App, campaign: str, member: str, actor: str, reason: str, at_text: str | None) -> None:
    """The member resumes where it was."""
    _single(lambda s, at: operations_ops().resume(s, campaign, member, actor, reason, at), app, campaign, at_text, member=member)


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
        raise click.UsageError(human.say(app.locale, "请指明 --confirm 或 --accept-late", "name --confirm or --accept-late"))
    _single(
        lambda s, at: appraisal_ops().withdrawal(s, campaign, member, actor, reason, at, confirm=confirm),
        app, campaign, at_text,
        (f"{member}：已确认视为自行脱党，待上级党委审批", f"{member}: withdrawal confirmed, awaiting the upper committee's approval")
        if confirm else None,
        member=member,
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
        result = appraisal_ops().approve(session, campaign, branch, actor, at, reject=reject, reason=reason)
    lang = app.locale
    if not (result.approved or result.rejected or result.withdrawn):
        click.echo(human.say(lang, f"campaign: 党支部 {branch} 没有待审批的事项", f"campaign: branch {branch}: nothing awaits approval"), err=True)
        sys.exit(1)
    if reject:
        click.echo(human.say(lang, f"党支部 {branch}：{len(result.rejected)} 人的评定意见被退回，支部重新评议",
                             f"branch {branch}: {len(result.rejected)} ratings rejected — the branch reviews again"))
    else:
        click.echo(human.say(lang, f"党支部 {branch}：{len(result.approved)} 人的评定意见已批准，开始公示；{len(result.withdrawn)} 人除名",
                             f"branch {branch}: {len(result.approved)} ratings approved, publicity starts; {len(result.withdrawn)} withdrawn"))


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
        chosen = appraisal_ops().select_excellent(session, campaign, list(members), actor, at)
    click.echo(human.say(app.locale, f"评为优秀共产党员：{'、'.join(chosen) or '无新增'}",
                         f"selected as excellent: {', '.join(chosen) or 'nobody new'}"))


@cli.command("object")
@click.argument("campaign")
@click.option("--member", required=True)
@click.option("--actor", required=True)
@click.option("--reason", required=True)
@at_option
@pass_app
def object_(app: App, campaign: str, member: str, actor: str, reason: str, at_text: str | None) -> None:
    """An objection during publicity."""
    _single(lambda s, at: appraisal_ops().object_to(s, campaign, member, actor, reason, at), app, campaign, at_text,
            (f"{member}：异议已记录，处理完毕前公示期不结束", f"{member}: objection recorded, publicity held open until it is resolved"))


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
        raise click.UsageError(human.say(app.locale, "请指明 --upheld 或 --dismissed", "name --upheld or --dismissed"))
    _single(lambda s, at: appraisal_ops().resolve(s, campaign, member, upheld, actor, reason, at), app, campaign, at_text,
            (f"{member}：异议成立，重新投票", f"{member}: objection upheld — back to a new ballot") if upheld
            else (f"{member}：异议不成立", f"{member}: objection dismissed"))


# -- the log -----------------------------------------------------------------------------------------------------
