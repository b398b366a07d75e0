"""What every command shares: the settings and engine, the time T, output as JSON or for people."""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import click
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from cli.human import say
from states import anchors, audit
from states.clock import parse_instant
from states.db import ensure_schema, make_engine
from states.errors import NotFound
from states.keys import secret_key
from states.labels import DEFAULT_LOCALE, Locale
from states.models import Campaign
from states.settings import Settings, load_settings

DEFAULT_TZ = "Asia/Shanghai"


class App:
    """What every command needs: settings and an engine whose schema is current."""

    def __init__(self, settings: Settings, locale: Locale = DEFAULT_LOCALE) -> None:
        self.settings = settings
        self.locale: Locale = locale
        """The language of output for people (`--lang`, `CAMPAIGN_LANG`); JSON is the same in every language."""
        self._engine: Engine | None = None
        self._audit_key: bytes | None = None

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            self._engine = make_engine(self.settings.database_url)
            ensure_schema(self._engine)
        return self._engine

    @property
    def audit_key(self) -> bytes:
        """The audit seal's key, from outside the database (`states.keys`)."""
        if self._audit_key is None:
            self._audit_key = secret_key(self.settings, "audit")
        return self._audit_key

    @contextmanager
    def write(self, at: dt.datetime, dry_run: bool = False) -> Iterator[Session]:
        """One transaction, sealed in the audit chain before it commits, its head anchored outside after; with
        `dry_run` the same work is done, checked and counted, then rolled back, so a trial and the real thing can
        never disagree."""
        key = self.audit_key  # read first: without its key a command changes nothing
        with Session(self.engine, expire_on_commit=False) as session:
            transaction = session.begin()
            try:
                yield session
                if dry_run:
                    transaction.rollback()
                else:
                    audit.seal(session, at, key)
                    transaction.commit()
            except BaseException:
                if transaction.is_active:
                    transaction.rollback()
                raise
        if not dry_run:
            self.anchor()

    def anchor(self, note: str | None = None) -> None:
        """Append the chain's head to the anchor file (after a commit: an anchor names only what is committed)."""
        with self.read() as session:
            head = audit.head(session)
        anchors.append(self.settings.audit_anchors, anchors.database_label(self.engine.url), head, note)

    @contextmanager
    def read(self) -> Iterator[Session]:
        with Session(self.engine, expire_on_commit=False) as session:
            yield session

    def timezone(self, key: str | None) -> str:
        with self.read() as session:
            if key is not None:
                campaign = session.get(Campaign, key)
                if campaign is None:
                    raise NotFound(zh=f"没有活动 {key!r}", en=f"unknown campaign {key!r}")
                return campaign.timezone
            first = session.scalar(select(Campaign.timezone).order_by(Campaign.loaded_at.desc()).limit(1))
            return first or DEFAULT_TZ

    def at(self, text: str | None, key: str | None = None) -> dt.datetime:
        return parse_instant(text, self.timezone(key), simulation=self.settings.simulation)


def appraisal_ops() -> Any:
    from states import appraisal

    return appraisal


def operations_ops() -> Any:
    from states import operations

    return operations


def with_prefect(lang: Locale, zh: str, en: str, action: Callable[[], object]) -> None:
    """Where a Prefect server is configured (PREFECT_API_URL), tell it too; the database change stands either way."""
    if not os.environ.get("PREFECT_API_URL"):
        return
    try:
        from flows.login import use_for_clients

        use_for_clients()  # the server `make run` starts asks for its login (var/ui-credentials)
        action()
    except Exception as exc:  # noqa: BLE001 - the server is an extra; its failure must not undo the command
        why = " ".join(str(exc).split())[:200]
        click.echo(say(lang, f"campaign: 警告：未能在 Prefect 中{zh}：{why}", f"campaign: warning: could not {en} in Prefect: {why}"),
                   err=True)


def schedule_runs(key: str, engine: Engine) -> None:
    from flows.schedule import schedule_deadlines

    schedule_deadlines(key, engine)


def request_approval(campaign: str, branch_id: str, meeting_id: int | None) -> None:
    assert meeting_id is not None
    from flows.approval import request_approval

    request_approval(campaign, branch_id, meeting_id)


def emit(data: Any, as_json: bool, human: Callable[[Any], str]) -> None:
    if as_json:
        click.echo(json.dumps(data, ensure_ascii=False, indent=None, default=str))
    else:
        click.echo(human(data))


at_option = click.option("--at", "at_text", metavar="T", help="ISO 8601 time (default now; no offset = campaign's timezone)")
json_option = click.option("--json", "as_json", is_flag=True, help="print JSON")


LANGS: dict[str, Locale] = {"zh": "zh-CN", "zh-cn": "zh-CN", "en": "en"}
LANG_HELP = "language of the output for people: zh (the default) or en; JSON is the same in both"


def _locale(value: str | None) -> Locale | None:
    if value is None:
        return None
    try:
        return LANGS[value.strip().lower().replace("_", "-")]
    except KeyError:
        raise click.BadParameter(f"{value!r} is not one of zh, en") from None


chosen: ContextVar[Locale] = ContextVar("chosen", default=DEFAULT_LOCALE)
"""The language this run's person chose, as far as the command line has been read: `main` says why a command
failed in it, after the command's context is gone."""


def environment_locale() -> Locale:
    """CAMPAIGN_LANG as far as it names a language, else the default: what a run speaks before its options are read."""
    return LANGS.get(os.environ.get("CAMPAIGN_LANG", "").strip().lower().replace("_", "-"), DEFAULT_LOCALE)


def _command_lang(ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
    locale = _locale(value)
    app = ctx.find_object(App)
    if locale is not None and app is not None:
        app.locale = locale
        chosen.set(locale)


def lang_option(command: click.Command) -> None:
    """Give `command` its own `--lang` (after the command, as people type it), unless it has one already."""
    if any(p.name == "lang" for p in command.params):
        return
    command.params.append(
        click.Option(["--lang"], metavar="zh|en", expose_value=False, is_eager=True, callback=_command_lang, help=LANG_HELP)
    )


def lang_everywhere(group: click.Group) -> None:
    """Every command of the tree accepts `--lang` (a command that defines its own keeps it)."""
    for command in group.commands.values():
        if isinstance(command, click.Group):
            lang_everywhere(command)
        else:
            lang_option(command)


EXIT_CODES = """\b
Exit status: 0 success; 1 refused by the rules (authority, an unmet precondition, no quorum, a quota);
2 bad input (an unreadable file, an unknown id, a malformed row); 3 the environment failed (the database
does not answer, the disk is full). On 1, 2 and 3 one line on stderr says why, and nothing is changed.
Output for people, that line too, is in Chinese; --lang en (or CAMPAIGN_LANG=en) for English; --json for
programs."""


@click.group(context_settings={"help_option_names": ["-h", "--help"]}, epilog=EXIT_CODES)
@click.option("--lang", metavar="zh|en", envvar="CAMPAIGN_LANG", default=None, help=LANG_HELP)
@click.pass_context
def cli(ctx: click.Context, lang: str | None) -> None:
    """Campaign orchestration: members and branches through study → analysis → rectification → consolidation → pledge."""
    locale = _locale(lang) or DEFAULT_LOCALE
    chosen.set(locale)
    ctx.obj = App(load_settings(), locale)


pass_app = click.make_pass_decorator(App)


# -- set-up ------------------------------------------------------------------------------------------------------
