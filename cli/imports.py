"""`campaign roster|plan|record|ballot …`: the organisation's files in, each import one atomic act."""

from __future__ import annotations

import dataclasses
from contextlib import AbstractContextManager
from pathlib import Path

import click

from cli import progress
from cli.app import (
    App,
    appraisal_ops,
    at_option,
    cli,
    pass_app,
    request_approval,
    schedule_runs,
    with_prefect,
)
from cli.human import say
from readers import read_table
from states import columns
from states.clock import parse_instant
from states.errors import BadInput
from states.labels import Locale
from states.source import Source, ignored, located

sheet_option = click.option("--sheet", metavar="NAME", help="the sheet of an .xlsx workbook (default: its first)")
dry_run_option = click.option(
    "--dry-run", is_flag=True, help="check the whole file and report what it would change; write nothing"
)
def dry_run_note(lang: Locale) -> str:
    return say(lang, "（演练 --dry-run：以上是导入将做的更改，没有写入任何内容）",
               "(--dry-run: the above is what the import would change; nothing was written)")


def read_import(file: Path, sheet: str | None, kind: str, lang: Locale) -> Source:
    """The file as rows, whatever its format; the columns its kind does not use are named (they are ignored)."""
    source = read_table(file, sheet)
    if progress.shown():
        label = say(lang, f"{file.name}：已读取行数", f"{file.name}: rows read")
        source = dataclasses.replace(source, data=progress.counted(source.data, label))
    table = columns.FILES[kind]
    extra = ignored(source, columns.required(table), columns.optional(table))
    if extra:
        click.echo(say(lang, f"已忽略的列: {'、'.join(extra)}", f"ignored columns: {', '.join(extra)}"))
    return source


def where(source: Source, kind: str) -> AbstractContextManager[None]:
    """Errors about the file name its columns as its header does, and in a workbook the sheet and cell."""
    table = columns.FILES[kind]
    return located(source, columns.required(table), columns.optional(table))


@cli.group()
def roster() -> None:
    """Units, branches and people."""


@roster.command("import")
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--actor", required=True, help="who imports: the committee secretary or the party group")
@at_option
@sheet_option
@dry_run_option
@pass_app
def roster_import(
    app: App, file: Path, actor: str, at_text: str | None, sheet: str | None, dry_run: bool
) -> None:
    """Add or update units, branches and members (never deletes)."""
    from states.roster import import_roster

    lang = app.locale
    source = read_import(file, sheet, "roster", lang)
    at = app.at(at_text)
    with app.write(at, dry_run) as session, where(source, "roster"):
        result = import_roster(session, source, actor, at)
    if result.unchanged:
        click.echo(say(lang, f"{file}：此前已导入，未作更改", f"{file}: already imported, nothing changed"))
    else:
        click.echo(say(
            lang,
            f"{file}：新增 {result.added} 人，更新 {result.updated} 人，转接组织关系 {result.transferred} 人，"
            f"{result.joined} 人加入进行中的活动",
            f"{file}: {result.added} added, {result.updated} updated, {result.transferred} transferred, "
            f"{result.joined} joined a running campaign",
        ))
    if dry_run:
        click.echo(dry_run_note(lang))


@cli.group()
def plan() -> None:
    """Campaign plans."""


@plan.command("load")
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--actor", required=True, help="who loads it: the committee secretary or the party group")
@at_option
@dry_run_option
@pass_app
def plan_load(app: App, file: Path, actor: str, at_text: str | None, dry_run: bool) -> None:
    """Create or update a campaign from a plan; prints its key."""
    from states.plan import load_plan, read_plan

    parsed, _digest = read_plan(file)
    at = parse_instant(at_text, parsed.timezone, simulation=app.settings.simulation)
    with app.write(at, dry_run) as session:
        load_plan(session, parsed, actor, at)
    click.echo(parsed.key)
    if dry_run:
        click.echo(dry_run_note(app.locale))
        return
    with_prefect(app.locale, "安排其截止时间的运行", "schedule its deadline runs", lambda: schedule_runs(parsed.key, app.engine))


@cli.group()
def record() -> None:
    """Evidence: study hours, submissions, meetings, talks …"""


@record.command("import")
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--actor", required=True, help="who imports: the secretary of every row's branch, or a leader")
@at_option
@sheet_option
@dry_run_option
@pass_app
def record_import(
    app: App, file: Path, actor: str, at_text: str | None, sheet: str | None, dry_run: bool
) -> None:
    """Add evidence (atomic: one bad row rejects the whole file)."""
    from states.records import import_records

    lang = app.locale
    source = read_import(file, sheet, "records", lang)
    at = app.at(at_text)
    with app.write(at, dry_run) as session, where(source, "records"):
        result = import_records(session, source, actor, at)
    if result.unchanged:
        click.echo(say(lang, f"{file}：此前已导入，未作更改", f"{file}: already imported, nothing changed"))
    else:
        click.echo(say(lang, f"{file}：新增 {result.added} 条记录，更正 {result.updated} 条",
                       f"{file}: {result.added} records added, {result.updated} corrected"))
    if dry_run:
        click.echo(dry_run_note(lang))


@cli.group()
def ballot() -> None:
    """Branch member meetings' secret ballots (tallies only)."""


@ballot.command("import")
@click.argument("campaign")
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--actor", required=True, help="who records it: the branch's secretary or a leader")
@at_option
@sheet_option
@dry_run_option
@pass_app
def ballot_import(
    app: App, campaign: str, file: Path, actor: str, at_text: str | None, sheet: str | None, dry_run: bool
) -> None:
    """Record one branch member meeting's ballot; without quorum it is refused."""
    lang = app.locale
    source = read_import(file, sheet, "ballot", lang)
    at = app.at(at_text, campaign)
    with app.write(at, dry_run) as session, where(source, "ballot"):
        result = appraisal_ops().import_ballot(session, campaign, source, actor, at)
    if result.unchanged:
        click.echo(say(lang, f"{file}：此前已记录，未作更改", f"{file}: already recorded, nothing changed"))
        return
    click.echo(say(lang, f"党支部 {result.branch_id}：{len(result.ratings)} 人的评定意见成立，{len(result.void)} 人无效",
                   f"branch {result.branch_id}: {len(result.ratings)} ratings stand, {len(result.void)} void"))
    for member_id in result.void:
        click.echo(say(lang, f"  {member_id}：没有一种评定意见超过投票数的一半，须重新投票",
                       f"  {member_id}: no rating had more than half of the votes cast — hold the ballot again"))
    if dry_run:
        click.echo(dry_run_note(lang))
    elif result.ratings:
        click.echo(say(lang, "  待上级党委审批（campaign approve）", "  awaiting the upper committee's approval (campaign approve)"))
        with_prefect(
            lang, "启动其审批流程", "start its approval flow",
            lambda: request_approval(campaign, result.branch_id, result.meeting_id),
        )


# -- the sweep and what it shows ---------------------------------------------------------------------------------


# -- empty files to fill in ----------------------------------------------------------------------------------------
SHEET_TITLES = {
    "roster": {"zh-CN": "花名册", "en": "roster"},
    "records": {"zh-CN": "活动记录", "en": "records"},
    "ballot": {"zh-CN": "测评票", "en": "ballot"},
}


def _exists(target: Path) -> BadInput:
    return BadInput(zh=f"{target} 已存在：请用 --out 另取文件名", en=f"{target} exists already: name another file with --out")


@cli.command("template")
@click.argument("kind", type=click.Choice(list(columns.FILES)))
@click.option("--xlsx", "as_xlsx", is_flag=True, help="an Excel workbook (.xlsx) instead of a CSV file")
@click.option(
    "--lang", type=click.Choice(["zh-CN", "zh", "en"]), default="zh-CN", show_default=True,
    help="the headers' language: Chinese, or en for the English column names",
)
@click.option("--out", type=click.Path(path_type=Path), help="the file to write (default: KIND.csv or KIND.xlsx here)")
def template(kind: str, as_xlsx: bool, lang: str, out: Path | None) -> None:
    """Write an empty import file with its header row (see docs/formats.md); either language's headers import.

    A CSV is UTF-8 with a BOM, so Excel and WPS open it with its Chinese intact. An existing file is never
    overwritten."""
    import os
    import tempfile

    english = lang == "en"
    header = columns.headers(columns.FILES[kind], english)
    target = out or Path(f"{kind}.{'xlsx' if as_xlsx else 'csv'}")
    if target.exists():
        raise _exists(target)
    folder = target.parent if str(target.parent) else Path(".")
    handle, temporary = tempfile.mkstemp(prefix=".template-", dir=folder)
    os.close(handle)
    try:
        if as_xlsx:
            from openpyxl import Workbook

            book = Workbook(write_only=True)
            sheet = book.create_sheet(SHEET_TITLES[kind]["en" if english else "zh-CN"])
            sheet.append(header)
            book.save(temporary)
        else:
            Path(temporary).write_bytes(("\ufeff" + ",".join(header) + "\r\n").encode("utf-8"))
        os.chmod(temporary, 0o644)
        os.link(temporary, target)  # fails rather than overwrite a file that appeared meanwhile
    except FileExistsError:
        raise _exists(target) from None
    except OSError as exc:
        why = exc.strerror or exc
        raise BadInput(zh=f"无法写入 {target}：{why}", en=f"cannot write {target}: {why}") from None
    finally:
        os.unlink(temporary)
    click.echo(f"wrote {target} ({', '.join(header)})" if english else f"已写入 {target}（{'、'.join(header)}）")
