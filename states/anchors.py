"""The audit chain's head anchored outside the database: one line per anchor appended to a 0600 file."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import re
from pathlib import Path

from sqlalchemy.engine import URL

from states.audit import Head
from states.errors import BadInput, CampaignError

LINE = re.compile(r"^(?P<time>\S+) db=(?P<db>[0-9a-f]{16}) chain=(?P<chain>[0-9a-f]{64}) seal=(?P<seal>\d+)"
                  r" digest=(?P<digest>[0-9a-f]{64})(?: (?P<note>[a-z]+))?$")


class AnchorUnwritable(CampaignError):
    """The anchor file could not be appended to (exit 3: the environment failed)."""

    exit_code = 3


def database_label(url: URL) -> str:
    """Which database an anchor is of, without naming it in clear: a SQLite file's absolute path or PostgreSQL's
    host, port and database, hashed. Copies of one database (a backup, a test's copy) share a chain; their anchors
    must not be taken for each other's."""
    if url.get_backend_name() == "sqlite":
        where = str(Path(url.database or "").resolve())
    else:
        where = f"{url.host}:{url.port or 5432}/{url.database}"
    return hashlib.sha256(where.encode()).hexdigest()[:16]


def line(db: str, head: Head, note: str | None = None) -> str:
    """One anchor: when (the machine's clock, UTC), the database, the chain (its first seal), the head seal's id
    and digest."""
    when = dt.datetime.now(dt.UTC).isoformat(timespec="microseconds")
    return f"{when} db={db} chain={head.chain} seal={head.seal_id} digest={head.digest}" + (f" {note}" if note else "")


def append(path: Path, db: str, head: Head | None, note: str | None = None) -> None:
    """Append the head as one line: one write(2) with O_APPEND, so concurrent writers never interleave a line;
    created 0600 (a folder 0700 if missing); fsynced, so an anchor the caller reported is on disk."""
    if head is None:
        return
    data = (line(db, head, note) + "\n").encode("ascii")
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as exc:
        why = exc.strerror or exc
        raise AnchorUnwritable(zh=f"无法把审计锚点追加到 {path}：{why}", en=f"cannot append the audit anchor to {path}: {why}") from None


def read(path: Path, db: str | None, chain: str | None) -> tuple[list[Head], Head | None]:
    """(the anchors of this database's `chain` — of `chain` in any database when `db` is None — since its last
    restore, oldest first; the newest anchor of any database or chain). A line that is not an anchor is bad input,
    named by its number."""
    try:
        text = path.read_text(encoding="ascii")
    except FileNotFoundError:
        raise BadInput(zh=f"找不到锚点文件 {path}", en=f"anchor file {path} not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise BadInput(zh=f"无法读取锚点文件 {path}：{exc}", en=f"anchor file {path} unreadable: {exc}") from None
    ours: list[Head] = []
    newest: Head | None = None
    for number, raw in enumerate(text.splitlines(), 1):
        if not raw.strip():
            continue
        match = LINE.match(raw.strip())
        if match is None:
            raise BadInput(zh=f"{path} 第{number}行：不是审计锚点", en=f"{path}:{number}: not an audit anchor line")
        anchor = Head(match["chain"], int(match["seal"]), match["digest"])
        newest = anchor
        if db is not None and match["db"] != db:
            continue
        if match["note"] == "restore":
            ours = []  # a restore rewound the log on purpose: the heads before it are no longer the chain's
        if anchor.chain == chain:
            ours.append(anchor)
    return ours, newest
