"""The answers people ask for: who is stuck and on what (`stuck`), and the campaigns and where each stands."""

from __future__ import annotations

import csv
import io
import json
import os
import sys
import tempfile
from pathlib import Path

import click

from cli import human
from cli.app import App, at_option, cli, emit, json_option, pass_app
from reports.cells import csv_row, neutralise
from reports.history import changed_after
from states.errors import BadInput
from states.status import campaign_list
from states.stuck import stuck_list


@cli.command()
@click.argument("campaign")
@click.option("--branch", default=None, help="one branch and its members")
@click.option(
    "--condition", default=None,
    help="only those on whom this condition is unmet, named as the list shows it or by id (e.g. 学时 or study_hours)",
)
@at_option
@click.option("--json", "form", flag_value="json", help="print JSON: one entry per stuck member or branch")
@click.option("--csv", "form", flag_value="csv", help="CSV (UTF-8 with BOM, opens in Excel and WPS)")
@click.option("--xlsx", "form", flag_value="xlsx", help="an Excel workbook (needs --out, or stdout not a terminal)")
@click.option("--out", "out", type=click.Path(dir_okay=False, path_type=Path), default=None, help="write to FILE")
@pass_app
def stuck(
    app: App, campaign: str, branch: str | None, condition: str | None, at_text: str | None, form: str | None,
    out: Path | None,
) -> None:
    """Who is stuck, since when, on which unmet conditions, with figures — branch by branch.

    At a past --at the list takes everyone's present state with the records up to then (and says so when anything
    changed since); `campaign report --at` shows how things stood then."""
    at = app.at(at_text, campaign)
    tz, lang = app.timezone(campaign), app.locale
    if form == "xlsx" and out is None and sys.stdout.isatty():
        raise BadInput(zh="--xlsx 需要 --out 文件名（工作簿不能输出到终端）", en="--xlsx needs --out FILE (a workbook is not for a terminal)")
    wanted = human.condition_ids(condition, lang) if condition is not None else None
    with app.read() as session:
        entries = stuck_list(session, campaign, at, branch=branch, branches_per_chunk=app.settings.chunk_branches)
        # The list takes today's states: at a past T, say so when anything was decided since (the report replays).
        since_changed = form is None and at_text is not None and changed_after(session, campaign, at)
    if wanted is not None:
        entries = [e for e in entries if any(u["condition"] in wanted for u in e["unmet"])]
    if form == "json":
        data = [{k: e[k] for k in ("member_id", "branch_id", "state", "since", "unmet")} for e in entries]
        write_out(out, json.dumps(data, ensure_ascii=False) + "\n")
    elif form == "csv":
        # A BOM in the file: Excel and WPS then read the Chinese as UTF-8.
        write_out(out, _csv(human.stuck_header(lang), human.stuck_rows(entries, tz, lang)), bom=True)
    elif form == "xlsx":
        write_out(out, _xlsx(campaign, human.stuck_header(lang), human.stuck_rows(entries, tz, lang)))
    else:
        write_out(out, human.stuck(entries, campaign, at, tz, lang, since_changed=since_changed) + "\n")


@cli.command()
@at_option
@json_option
@pass_app
def campaigns(app: App, at_text: str | None, as_json: bool) -> None:
    """The campaigns and where each stands (the phase whose window holds T, its participants)."""
    at = app.at(at_text)
    with app.read() as session:
        found = campaign_list(session, at)
    emit(found, as_json, lambda d: human.campaigns(d, app.locale))


def _csv(header: list[str], rows: list[list[str]]) -> str:
    text = io.StringIO(newline="")
    writer = csv.writer(text, lineterminator="\r\n")
    writer.writerow(csv_row(header))
    writer.writerows(csv_row(row) for row in rows)
    return text.getvalue()


def _xlsx(campaign: str, header: list[str], rows: list[list[str]]) -> bytes:
    """A write-only workbook streams its rows; every cell is text, neutralised like CSV cells so that nothing in it
    runs as a formula."""
    from openpyxl import Workbook

    book = Workbook(write_only=True)
    sheet = book.create_sheet(title=campaign[:31])
    sheet.append(header)
    for row in rows:
        sheet.append([neutralise(cell) for cell in row])
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def write_out(out: Path | None, content: str | bytes, bom: bool = False) -> None:
    """To FILE whole or not at all (a temporary file beside it, synced, renamed into place; private, 0600, as it
    names people), or to stdout."""
    if out is None:
        if isinstance(content, bytes):
            sys.stdout.buffer.write(content)
            sys.stdout.buffer.flush()
        else:
            click.echo(content, nl=False)
        return
    data = content if isinstance(content, bytes) else ("\ufeff" if bom else "").encode() + content.encode("utf-8")
    target = out.resolve()
    if target.exists() and not target.is_file():
        # A device or a pipe (/dev/stdout, a FIFO) is written as it is: there is nothing to replace atomically.
        with target.open("wb") as stream:
            stream.write(data)
        return
    handle, temporary = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
