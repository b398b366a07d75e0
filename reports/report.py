"""The campaign's static HTML reports written into a directory: the entry point `write_report`, and the writing.

An overview, one page per branch and the publicity notices, in Chinese, offline: what is read is in `data`, the
page models in `pages` and `appraisal`, the charts in `charts`, the rendering in `render`.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from sqlalchemy.orm import Session

from reports.data import Facts
from reports.render import make_environment, render_all
from states.errors import BadInput

_OURS = re.compile(r"^(index|branch-[A-Za-z0-9_.\-]+|publicity-[A-Za-z0-9_.\-]+)\.html$")
MANIFEST = ".campaign-report.json"
"""What the report wrote into its directory, by name and content hash: the only files it replaces or removes."""


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _make_private_dirs(path: Path) -> None:
    """Create `path` and any missing parent 0700; a directory that already exists is someone's and left as it is."""
    missing = []
    for candidate in (path, *path.parents):
        if candidate.is_dir():
            break
        missing.append(candidate)
    for directory in reversed(missing):
        try:
            directory.mkdir(mode=0o700)
        except FileExistsError:
            if not directory.is_dir():
                raise
        else:
            os.chmod(directory, 0o700)  # mkdir's mode is narrowed by the umask, never widened: make it exact


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def read_manifest(out_dir: Path) -> dict[str, set[str]]:
    """The pages a report wrote into `out_dir`, each with the content hashes it may have: none if unreadable.

    An unreadable or hand-made manifest claims nothing: the worst it can do is make a report refuse to write.
    """
    path = out_dir / MANIFEST
    if path.is_symlink() or not path.is_file():
        return {}
    try:
        found = json.loads(path.read_text(encoding="utf-8"))
        files = found["files"]
        return {
            name: {str(h) for h in hashes}
            for name, hashes in files.items()
            if isinstance(name, str) and _OURS.match(name) and isinstance(hashes, list)
        }
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return {}


class _Staging:
    """Pages are written to a directory beside the target, then each replaces its old version atomically.

    Only files the manifest lists, still as the report wrote them, are ever replaced or removed: a file someone put
    in the directory (or edited after the report wrote it) is never touched, even when it is named like a page.
    """

    def __init__(self, out_dir: Path, key: str) -> None:
        _make_private_dirs(out_dir)
        self.out_dir = out_dir
        self.key = key
        self.ours: dict[str, set[str]] = {}
        # Inside the target, so every os.replace stays on one filesystem (and is atomic); mkdtemp makes it 0700.
        self.dir = Path(tempfile.mkdtemp(prefix=".report-", dir=out_dir))
        self.pages: dict[str, str] = {}
        """Each page written so far, with the hash of its content, in the order written."""

    def add(self, name: str, text: str) -> None:
        # Names carry branch ids; ids are checked on import, and this keeps any page inside the directory.
        if not _OURS.match(name) or name in self.pages:
            raise ValueError(f"not a report page name, or twice: {name!r}")
        data = text.encode("utf-8")
        _write_private(self.dir / name, data)
        self.pages[name] = _digest(data)

    def _ours(self, name: str) -> bool:
        """Whether the file `name` in the directory is one this report wrote, unchanged since."""
        target = self.out_dir / name
        if target.is_symlink() or not target.is_file():
            return False
        return _digest(target.read_bytes()) in self.ours.get(name, set())

    def _manifest(self, files: dict[str, set[str]]) -> None:
        body = {"written_by": "campaign report", "campaign": self.key,
                "files": {name: sorted(hashes) for name, hashes in sorted(files.items())}}
        fresh = self.dir / MANIFEST
        fresh.unlink(missing_ok=True)
        _write_private(fresh, (json.dumps(body, ensure_ascii=False, indent=1) + "\n").encode("utf-8"))
        os.replace(fresh, self.out_dir / MANIFEST)

    def commit(self) -> list[Path]:
        """Replace changed pages (the index last, so it never links a page not there yet), drop stale ones of ours.

        Refused before anything changes when a page would replace a file the report did not write. Two reports
        committing into one directory at once take turns (a lock on the directory), each reading the other's list.
        """
        fd = os.open(self.out_dir, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            self.ours = read_manifest(self.out_dir)
            return self._commit()
        finally:
            os.close(fd)  # closing releases the lock

    def _commit(self) -> list[Path]:
        foreign = [
            name for name in self.pages if (self.out_dir / name).exists() or (self.out_dir / name).is_symlink()
            if not self._ours(name)
        ]
        if foreign:
            named, many = self.out_dir / foreign[0], len(foreign) > 1
            raise BadInput(
                zh=f"{named} 不是报告写入的文件（或写入后被改动过），不覆盖"
                f"{f'（共 {len(foreign)} 个）' if many else ''}：请换一个 --out 目录，或先移走这些文件",
                en=f"{named} was not written by a report (or was changed since), so it is not overwritten"
                f"{f' ({len(foreign)} such files)' if many else ''}: choose another --out folder or move them away",
            )
        stale = [name for name in self.ours if name not in self.pages and self._ours(name)]
        # First a manifest that claims both the old and the new content, so a run stopped half-way leaves every
        # page of ours recognisable by the next run; the final manifest lists only what this run wrote.
        claimed = {name: set(hashes) for name, hashes in self.ours.items() if name in self.pages or name in stale}
        for name, digest in self.pages.items():
            claimed.setdefault(name, set()).add(digest)
        self._manifest(claimed)
        order = [n for n in self.pages if n != "index.html"] + [n for n in self.pages if n == "index.html"]
        for name in order:
            fresh, target = self.dir / name, self.out_dir / name
            # Unchanged pages are left alone: a second run at the same T touches nothing.
            if target.exists() and _digest(target.read_bytes()) == self.pages[name]:
                if target.stat().st_mode & 0o077:
                    os.chmod(target, 0o600)
                continue
            os.replace(fresh, target)
        for name in stale:
            (self.out_dir / name).unlink(missing_ok=True)
        self._manifest({name: {digest} for name, digest in self.pages.items()})
        first = [n for n in self.pages if n == "index.html"]
        return [self.out_dir / n for n in first + [n for n in self.pages if n != "index.html"]]

    def discard(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)


def write_report(
    session: Session, key: str, out_dir: Path, at: dt.datetime, on_page: Callable[[], None] | None = None
) -> list[Path]:
    """Write index.html, branch-<id>.html and publicity-<id>.html for campaign `key` at instant `at`.

    Read-only on the database; idempotent (the same facts and T give the same bytes, and unchanged pages are not
    rewritten); each page replaces its previous version atomically. Files are private (0600, new directories 0700)
    and listed in `out_dir/.campaign-report.json`: only those are ever replaced or removed. Returns the pages, the
    index first. Raises BadInput, changing nothing, when a page would replace a file the report did not write.
    `on_page` is called once per page rendered (a progress display).
    """
    facts = Facts(session, key, at)
    env = make_environment()
    out_dir = Path(out_dir)
    staging = _Staging(out_dir, key)
    try:
        def add(name: str, text: str) -> None:
            staging.add(name, text)
            if on_page is not None:
                on_page()

        render_all(facts, env, add)
        return staging.commit()
    finally:
        staging.discard()

