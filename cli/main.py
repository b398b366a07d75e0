"""The `campaign` entry point: every command module registered, and one place mapping errors to exit codes."""

from __future__ import annotations

import errno
import os
import sys

import click
from sqlalchemy.exc import InterfaceError, OperationalError

from cli import answers, database, decisions, imports, notify, views  # noqa: F401  (each registers its commands)
from cli.app import chosen, cli, environment_locale, lang_everywhere
from cli.human import say
from states.errors import CampaignError

lang_everywhere(cli)

# SQLSTATEs of a concurrent change that got there first (serialization failure, deadlock, lock not available):
# refused like any other compare-and-set conflict (exit 1); running the command again succeeds.
CONCURRENT = frozenset({"40001", "40P01", "55P03"})
# A path the user named that does not fit (exit 2); any other OSError is the machine's (disk full, read-only,
# permissions, I/O: exit 3).
BAD_PATH = frozenset({errno.ENOENT, errno.ENOTDIR, errno.EISDIR, errno.EEXIST, errno.ENAMETOOLONG})


def database_failure(exc: OperationalError | InterfaceError) -> tuple[int, str]:
    """The exit code and line for a database error: a conflict with a concurrent change is 1, anything else the
    driver calls operational (no answer, refused connection, disk full, read-only file) is the environment, 3. The
    driver's own words follow ours: the administrator looks them up."""
    text = (" ".join(str(exc.orig).split()) or type(exc.orig).__name__)[:300]
    state = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
    lang = chosen.get()
    if state in CONCURRENT or "database is locked" in text:
        return 1, say(lang, f"campaign: 另一项同时进行的更改已先完成，本次未作任何更改，请重新运行：{text}",
                      f"campaign: a concurrent change got there first, nothing was changed; run it again: {text}")
    return 3, say(lang, f"campaign: 环境故障，数据库不可用：{text}", f"campaign: the database failed: {text}")


def os_failure(exc: OSError) -> tuple[int, str]:
    where = f": {exc.filename}" if exc.filename else ""
    reason = exc.strerror or str(exc)
    if exc.errno in BAD_PATH:
        return 2, f"campaign: {reason}{where}"
    return 3, say(chosen.get(), f"campaign: 环境故障：{reason}{where}", f"campaign: the environment failed: {reason}{where}")


def main() -> None:
    """Entry point: a user's mistake is one line on stderr and exit 1 or 2, a failing environment exit 3, never a
    traceback."""
    os.umask(0o077)  # what the service writes (the database, the outbox, reports, keys) is its own: private
    chosen.set(environment_locale())  # until the command line names one (a run in-process starts afresh too)
    try:
        code = cli.main(standalone_mode=False)
    except CampaignError as exc:
        click.echo(f"campaign: {exc.text(chosen.get())}", err=True)
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo(say(chosen.get(), "campaign: 已中止", "campaign: aborted"), err=True)
        sys.exit(1)
    except click.ClickException as exc:
        # Click's own usage text spans several lines; the contract is one line, naming the command's --help.
        hint = say(chosen.get(), f"（参见 {exc.ctx.command_path} --help）", f" (see: {exc.ctx.command_path} --help)") \
            if isinstance(exc, click.UsageError) and exc.ctx else ""
        click.echo(f"campaign: {' '.join(exc.format_message().split())}{hint}", err=True)
        sys.exit(2)
    except (OperationalError, InterfaceError) as exc:
        status, line = database_failure(exc)
        click.echo(line, err=True)
        sys.exit(status)
    except OSError as exc:
        status, line = os_failure(exc)
        click.echo(line, err=True)
        sys.exit(status)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
