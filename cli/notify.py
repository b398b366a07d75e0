"""`campaign notify dispatch`: deliver the queued notices."""

from __future__ import annotations

import sys

import click

from cli import human, progress
from cli.app import (
    App,
    cli,
    pass_app,
)


@cli.group()
def notify() -> None:
    """Notices: deliver what is queued."""


@notify.command("dispatch")
@click.option("--channel", type=click.Choice(["file", "smtp"]), default="file", show_default=True)
@click.option("--batch", default=500, show_default=True)
@pass_app
def notify_dispatch(app: App, channel: str, batch: int) -> None:
    """Deliver pending notices; exit 1 if any could not be delivered (it stays queued and is tried again)."""
    from notices.dispatch import dispatch, pending_count

    lang = app.locale
    with app.read() as session:
        total = pending_count(session)
    if total == 0:
        click.echo(human.say(lang, "没有待发送的通知", "nothing to deliver"))
        return
    with progress.bar(total, human.say(lang, f"正在发送 {total} 条通知", f"delivering {total} notices")) as advance:
        result = dispatch(app.engine, app.settings, channel, batch=batch, progress=advance)
    where = app.settings.outbox_dir if channel == "file" else f"{app.settings.smtp_host}:{app.settings.smtp_port}"
    click.echo(human.say(
        lang,
        f"已发送 {result.sent} 条（{where}），{result.undeliverable} 条无法投递（无电子邮件地址），{result.failed} 条失败",
        f"{result.sent} delivered ({where}), {result.undeliverable} undeliverable (no address), {result.failed} failed",
    ))
    for error in (result.errors or [])[:5]:
        click.echo(f"  {error}", err=True)
    if result.failed:
        sys.exit(1)
