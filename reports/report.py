"""The campaign's static HTML reports written into a directory: the entry point `write_report`, and the writing.

An overview, one page per branch and the publicity notices, in Chinese, offline: what is read is in `data`, the
page models in `pages` and `appraisal`, the charts in `charts`, the rendering in `render`.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import tempfile
from pathlib import Path

from sqlalchemy.orm import Session

from reports.data import Facts
from reports.render import make_environment, render_all

_OURS = re.compile(r"^(index|branch-[A-Za-z0-9_.\-]+|publicity-[A-Za-z0-9_.\-]+)\.html$")


class _Staging:
    """Pages are written to a directory beside the target, then each replaces its old version atomically."""

    def __init__(self, out_dir: Path) -> None:
        out_dir.mkdir(parents=True, exist_ok=True)
        self.out_dir = out_dir
        # Inside the target, so every os.replace stays on one filesystem (and is atomic).
        self.dir = Path(tempfile.mkdtemp(prefix=".report-", dir=out_dir))
        self.names: list[str] = []

    def add(self, name: str, text: str) -> None:
        # Names carry branch ids; ids are checked on import, and this keeps any page inside the directory.
        if not _OURS.match(name):
            raise ValueError(f"not a report page name: {name!r}")
        with open(self.dir / name, "w", encoding="utf-8", newline="\n") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        self.names.append(name)

    def commit(self) -> list[Path]:
        """Replace changed pages (the index last, so it never links a page not there yet), drop stale ones."""
        order = [n for n in self.names if n != "index.html"] + [n for n in self.names if n == "index.html"]
        for name in order:
            fresh, target = self.dir / name, self.out_dir / name
            # Unchanged pages are left alone: a second run at the same T touches nothing.
            if target.exists() and target.read_bytes() == fresh.read_bytes():
                continue
            os.replace(fresh, target)
        keep = set(self.names)
        for old in self.out_dir.iterdir():
            if old.is_file() and _OURS.match(old.name) and old.name not in keep:
                old.unlink()
        first = [n for n in self.names if n == "index.html"]
        return [self.out_dir / n for n in first + [n for n in self.names if n != "index.html"]]

    def discard(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)


def write_report(session: Session, key: str, out_dir: Path, at: dt.datetime) -> list[Path]:
    """Write index.html, branch-<id>.html and publicity-<id>.html for campaign `key` at instant `at`.

    Read-only on the database; idempotent (the same facts and T give the same bytes, and unchanged pages are not
    rewritten); each page replaces its previous version atomically. Returns the pages, the index first.
    """
    facts = Facts(session, key, at)
    env = make_environment()
    out_dir = Path(out_dir)
    staging = _Staging(out_dir)
    try:
        render_all(facts, env, staging.add)
        return staging.commit()
    finally:
        staging.discard()

