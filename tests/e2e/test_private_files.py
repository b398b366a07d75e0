"""Hygiene (issue 14, item 7): what the service writes is private whatever the caller's umask, and a roster field
with a control character is refused (exit 2, naming file, line and column) before it can break a notice."""

from __future__ import annotations

import os
import sqlite3
import stat
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import pytest

from states.sample import roster_path

ROOT = Path(__file__).resolve().parents[2]


def run(tmp: Path, db: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CAMPAIGN_DATABASE_URL": f"sqlite:///{db}", "CAMPAIGN_OUTBOX_DIR": str(tmp / "outbox"),
           "PREFECT_API_URL": ""}
    # A caller as careless as a default login shell: files would come out world-readable without the service's mask.
    return subprocess.run(
        [sys.executable, "-m", "cli.main", *args], capture_output=True, text=True, env=env, cwd=tmp, umask=0o022
    )


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_database_its_folder_and_the_outbox_are_private(tmp_path: Path) -> None:
    db = tmp_path / "not" / "yet" / "campaign.db"
    done = run(tmp_path, db, "roster", "import", str(roster_path()), "--actor", "M002", "--at", "2024-03-01T09:00")
    assert done.returncode == 0, done.stderr
    assert mode(db.parent) == 0o700 and mode(db) == 0o600
    for extra in (db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")):
        if extra.exists():
            assert mode(extra) & 0o077 == 0, extra
    assert run(tmp_path, db, "plan", "load", str(ROOT / "states/sample/plan-2024.yaml"), "--actor", "M002",
               "--at", "2024-03-01T09:00").returncode == 0
    assert run(tmp_path, db, "sweep", "sfao-2024", "--at", "2024-03-25T00:00:01").returncode == 0
    assert run(tmp_path, db, "notify", "dispatch").returncode == 0
    outbox = tmp_path / "outbox"
    files = list(outbox.glob("*.eml"))
    assert files and mode(outbox) == 0o700
    assert {mode(f) for f in files} == {0o600}


HEADER = "member_id,name,branch_id,branch_name,unit,role,email\n"


@pytest.mark.parametrize(
    ("row", "column", "line"),
    [
        # a quoted field across two lines: the reader names the line the row ends on
        ('X1,"张\r\n三",B01,办公室党支部,省外办,member,\n', "name", 4),
        ("X1,张三,B01,办公室党支部,省外\u2028办,member,\n", "unit", 3),
        ("X1,张三,B01,办公室\u2029党支部,省外办,member,\n", "branch_name", 3),
        ("X1,张\u0085三,B01,办公室党支部,省外办,member,\n", "name", 3),
        ("X1,张\x07三,B01,办公室党支部,省外办,member,\n", "name", 3),
        ("X1,张三\u202e,B01,办公室党支部,省外办,member,\n", "name", 3),
        ('X1,张三,B01,办公室党支部,省外办,member,"x@example.cn\rBcc: all@example.cn"\n', "email", 4),
    ],
)
def test_control_characters_in_roster_fields_are_refused(tmp_path: Path, row: str, column: str, line: int) -> None:
    db = tmp_path / "campaign.db"
    assert run(tmp_path, db, "roster", "import", str(roster_path()), "--actor", "M002").returncode == 0
    with closing(sqlite3.connect(db)) as conn:
        before = conn.execute("SELECT count(*), group_concat(name) FROM person").fetchone()
    bad = tmp_path / "bad.csv"
    bad.write_bytes((HEADER + "X0,李四,B01,办公室党支部,省外办,member,\n" + row).encode("utf-8"))
    done = run(tmp_path, db, "roster", "import", str(bad), "--actor", "M002")
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr
    assert f"bad.csv 第{line}行，" in done.stderr and f"({column}) 列：" in done.stderr, done.stderr
    assert "含有控制字符" in done.stderr
    with closing(sqlite3.connect(db)) as conn:
        assert conn.execute("SELECT count(*), group_concat(name) FROM person").fetchone() == before
