"""`campaign db backup` / `restore`: a consistent copy taken while the service writes (SQLite's online backup API,
`pg_dump -Fc`), private (0600), put back whole, its audit chain verifying against the anchor file afterwards."""

from __future__ import annotations

import sqlite3
import stat
import subprocess
import sys
from contextlib import closing
from pathlib import Path

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from states.models import MemberProgress, TransitionLog
from tests.fixtures import KEY, load_sample
from tests.reliability.synth import ROOT, run_cli


def _env(engine: Engine, tmp: Path) -> dict[str, str]:
    return {
        "CAMPAIGN_DATABASE_URL": engine.url.render_as_string(hide_password=False),
        "CAMPAIGN_OUTBOX_DIR": str(tmp / "outbox"),
        "CAMPAIGN_AUDIT_ANCHORS": str(tmp / "anchors"),
        "PREFECT_API_URL": "",
    }


def _facts(engine: Engine) -> tuple[int, dict[str, str]]:
    with Session(engine) as session:
        entries = session.scalar(select(func.count()).select_from(TransitionLog)) or 0
        states = dict(session.execute(select(MemberProgress.member_id, MemberProgress.state)).all())
    return entries, states  # type: ignore[return-value]


def test_a_backup_taken_mid_campaign_restores_and_verifies(engine: Engine, tmp_path: Path) -> None:
    load_sample(engine)
    env = _env(engine, tmp_path)
    assert run_cli(["sweep", KEY, "--at", "2024-03-25T00:00:01"], env).code == 0
    file = tmp_path / "backups" / "mid.backup"
    made = run_cli(["db", "backup", str(file)], env)
    assert made.code == 0, made.err
    assert stat.S_IMODE(file.stat().st_mode) == 0o600
    assert [p.name for p in file.parent.iterdir()] == ["mid.backup"]  # no temporary left beside it
    mid = _facts(engine)
    again = run_cli(["db", "backup", str(file)], env)
    assert again.code == 1 and "--force" in again.err

    assert run_cli(["sweep", KEY, "--at", "2024-05-01T00:00:01"], env).code == 0
    later = _facts(engine)
    assert later != mid
    refused = run_cli(["db", "restore", str(file)], env)
    assert refused.code == 1 and "--force" in refused.err
    assert _facts(engine) == later  # nothing changed

    restored = run_cli(["db", "restore", str(file), "--force"], env)
    assert restored.code == 0, restored.err
    engine.dispose()
    assert _facts(engine) == mid
    # The anchor file still holds the later head; the restore appended the restored one after it.
    verified = run_cli(["audit", KEY, "--verify"], env)
    assert verified.code == 0, verified.err
    assert verified.out.startswith("审计链完好：") and "个锚点" in verified.out, verified.out
    assert (tmp_path / "anchors").read_text().rstrip().endswith(" restore")
    # The campaign goes on from the restored state.
    assert run_cli(["sweep", KEY, "--at", "2024-05-01T00:00:01"], env).code == 0
    assert run_cli(["audit", KEY, "--verify"], env).code == 0


def test_a_backup_is_consistent_while_a_sweep_writes(sqlite_engine: Engine, tmp_path: Path) -> None:
    load_sample(sqlite_engine)
    env = _env(sqlite_engine, tmp_path)
    writer = subprocess.Popen(
        [sys.executable, "-m", "cli.main", "sweep", KEY, "--at", "2024-03-25T00:00:01"],
        env={**__import__("os").environ, **env, "CAMPAIGN_CHUNK_BRANCHES": "1"}, cwd=ROOT,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    files = []
    try:
        while writer.poll() is None and len(files) < 20:
            file = tmp_path / f"during-{len(files)}.backup"
            assert run_cli(["db", "backup", str(file)], env).code == 0
            files.append(file)
    finally:
        _, err = writer.communicate(timeout=300)
    assert writer.returncode == 0, err
    assert files
    for file in files:
        with closing(sqlite3.connect(file)) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        fresh = tmp_path / f"{file.stem}.db"
        check = {**env, "CAMPAIGN_DATABASE_URL": f"sqlite:///{fresh}", "CAMPAIGN_AUDIT_ANCHORS": str(tmp_path / "x")}
        assert run_cli(["db", "restore", str(file)], check).code == 0  # an empty database needs no --force
        result = run_cli(["audit", KEY, "--verify"], check)
        assert result.code == 0, result.err


def test_a_tampered_backup_is_not_restored(sqlite_engine: Engine, tmp_path: Path) -> None:
    load_sample(sqlite_engine)
    env = _env(sqlite_engine, tmp_path)
    file = tmp_path / "b.backup"
    assert run_cli(["db", "backup", str(file)], env).code == 0
    with closing(sqlite3.connect(file)) as conn, conn:
        for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'").fetchall():
            conn.execute(f'DROP TRIGGER "{name}"')
        conn.execute("UPDATE transition_log SET actor = 'M999' WHERE id = 1")
    target = {**env, "CAMPAIGN_DATABASE_URL": f"sqlite:///{tmp_path / 'target.db'}"}
    result = run_cli(["db", "restore", str(file)], target)
    assert result.code == 1 and "审计链在区块" in result.err and "未恢复" in result.err, result.err
    assert run_cli(["db", "restore", str(tmp_path / "missing")], target).code == 2
    (tmp_path / "junk").write_text("not a database")
    assert run_cli(["db", "restore", str(tmp_path / "junk")], target).code == 2
