"""One sweep of a campaign at a time, whoever starts it: `campaign sweep` beside a Prefect flow's sweep, or two CLIs.

A sweep's chunks seal on lanes of their own and its finish merges every lane of the campaign not yet merged — its
own and those a stopped sweep left (`states.audit`). A second sweep running beside the first would merge the first's
lanes too, and the first's next chunk seal would then be refused. So a sweep holds its campaign for its whole run,
and a second one is refused at once (exit 1), never queued behind it.

The hold lives as long as the sweeping process and no longer, so a sweep that dies frees its campaign: on PostgreSQL a
session-level advisory lock on a connection of its own (autocommit: no transaction stays open for the sweep's
minutes); on SQLite an exclusive `flock` on a lock file beside the database (every process sweeping a SQLite file is
on its host). The chunks a sweep sends to a work pool run under their sweep's hold, held by the process waiting for
them. A database in memory is one process's alone: nothing to hold.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import Engine, text

from states.errors import Refused

SWEEP_RUN_LOCK = 20261130
"""PostgreSQL advisory lock of a running sweep (the second key hashes the campaign); audit's are 20261127-29."""


class SweepRunning(Refused):
    """Raised when a sweep of the campaign is already running."""

    def __init__(self, key: str) -> None:
        super().__init__(
            zh=f"活动 {key!r} 的另一次扫描正在进行（命令行或 Prefect 流程）；本次未作任何更改，请待其结束后再运行",
            en=f"another sweep of campaign {key!r} is running (a command or a Prefect flow); nothing was changed: "
            "run it again once that one has ended",
        )


def _campaign_hash(key: str) -> int:
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:4], "big", signed=True)


def lock_file(engine: Engine, key: str) -> Path | None:
    """The SQLite database's lock file for sweeps of `key` (None for a database in memory)."""
    database = engine.url.database
    if not database or database == ":memory:" or database.startswith("file::memory:"):
        return None
    return Path(f"{database}-sweep-{hashlib.sha256(key.encode()).hexdigest()[:16]}.lock")


@contextlib.contextmanager
def one_sweep(engine: Engine, key: str) -> Iterator[None]:
    """Hold campaign `key` for a sweep while the body runs; SweepRunning when another sweep holds it."""
    if engine.dialect.name == "postgresql":
        with _advisory(engine, key):
            yield
        return
    path = lock_file(engine, key)
    if path is None:
        yield
        return
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise SweepRunning(key) from None
        yield
    finally:
        os.close(fd)  # frees the flock (never unlinked: a process between open and flock would lock a stale file)


@contextlib.contextmanager
def _advisory(engine: Engine, key: str) -> Iterator[None]:
    keys = {"lock": SWEEP_RUN_LOCK, "campaign": _campaign_hash(key)}
    connection = engine.connect().execution_options(isolation_level="AUTOCOMMIT")
    try:
        if not connection.scalar(text("SELECT pg_try_advisory_lock(:lock, :campaign)"), keys):
            raise SweepRunning(key)
        try:
            yield
        finally:
            try:
                connection.execute(text("SELECT pg_advisory_unlock(:lock, :campaign)"), keys)
            except Exception:  # noqa: BLE001 - a connection that failed: closing it ends its session and the lock
                connection.invalidate()
    finally:
        connection.close()
