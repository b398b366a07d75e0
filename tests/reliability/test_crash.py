"""Crash safety: SIGKILL an import, a sweep and a dispatch at random (seeded) moments, resume, compare with a clean run.

Small by default (`make test`); the full size is an environment away:

    CAMPAIGN_CRASH_MEMBERS=50000 CAMPAIGN_CRASH_KILLS=20 .venv/bin/python -m pytest tests/reliability/test_crash.py

Each kill point starts from a copy of the database as it was before the operation, starts the real `campaign`
command as a process, kills it with SIGKILL after a random delay, checks what a crash may leave (audit chain intact,
no transition twice, an import all or nothing, no notice key twice), runs the command again to completion and
compares the end state with a clean run's. The figures are printed (run with -s) and kept in FIGURES.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from notices.channels import safe_filename
from tests.reliability.synth import (
    KEY,
    PYTHON,
    ROOT,
    Files,
    backup,
    counts,
    duplicate_transitions,
    eml_files,
    env_for,
    outcome,
    run_cli,
    write_campaign,
)

MEMBERS = int(os.environ.get("CAMPAIGN_CRASH_MEMBERS", "200"))
KILLS = int(os.environ.get("CAMPAIGN_CRASH_KILLS", "6"))
SEED = int(os.environ.get("CAMPAIGN_CRASH_SEED", "20261127"))
WHEN = "2024-03-01T09:00"
SWEEP_AT = "2024-09-01T00:00:01"  # fires the start and all five deadlines: many units, many transactions
START_AT = "2024-03-25T00:00:01"  # the start only: one phase_started notice per member (the dispatch's workload)
CHUNK = "4"  # branches per sweep chunk: many small transactions for a kill to fall between
FIGURES: dict[str, dict[str, object]] = {}


@dataclass
class Base:
    folder: Path
    files: Files
    pre_import: Path
    pre_sweep: Path
    pre_dispatch: Path
    clean_sweep: Path
    clean_outbox: Path
    wall: dict[str, float] = field(default_factory=dict)


def _env(db: Path, outbox: Path) -> dict[str, str]:
    return env_for(db, outbox, CAMPAIGN_CHUNK_BRANCHES=CHUNK)


def _ok(args: list[str], db: Path, outbox: Path) -> str:
    result = run_cli(args, _env(db, outbox))
    assert result.code == 0, (args, result.code, result.err)
    return result.out


def _timed_process(args: list[str], db: Path, outbox: Path) -> float:
    started = time.monotonic()
    done = subprocess.run([PYTHON, "-m", "cli.main", *args], env=_env(db, outbox), cwd=ROOT, capture_output=True)
    assert done.returncode == 0, done.stderr
    return time.monotonic() - started


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Base:
    """The synthetic office loaded, and a clean run of each operation timed as a process."""
    folder = tmp_path_factory.mktemp("crash")
    files = write_campaign(folder / "files", MEMBERS)
    db, outbox = folder / "clean.db", folder / "clean-outbox"
    _ok(["roster", "import", str(files.roster), "--actor", "S000002", "--at", WHEN], db, outbox)
    _ok(["plan", "load", str(files.plan), "--actor", "S000002", "--at", WHEN], db, outbox)
    made = Base(folder, files, folder / "pre-import.db", folder / "pre-sweep.db", folder / "pre-dispatch.db",
                folder / "clean-sweep.db", outbox)
    backup(db, made.pre_import)
    made.wall["import"] = _timed_process(["record", "import", str(files.records), "--actor", "S000002", "--at", WHEN], db, outbox)
    backup(db, made.pre_sweep)
    made.wall["sweep"] = _timed_process(["sweep", KEY, "--at", SWEEP_AT], db, outbox)
    backup(db, made.clean_sweep)
    start_db = folder / "start.db"
    backup(made.pre_sweep, start_db)
    _ok(["sweep", KEY, "--at", START_AT], start_db, outbox)
    backup(start_db, made.pre_dispatch)
    made.wall["dispatch"] = _timed_process(["notify", "dispatch"], start_db, outbox)
    made.clean_start = outcome(start_db)  # type: ignore[attr-defined]
    return made


def _kill_at(args: list[str], db: Path, outbox: Path, delay: float) -> bool:
    """Start the command as a process, SIGKILL it after `delay` s; True when it was killed before it finished."""
    process = subprocess.Popen(
        [PYTHON, "-m", "cli.main", *args], env=_env(db, outbox), cwd=ROOT,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        process.wait(timeout=delay)
        return False
    except subprocess.TimeoutExpired:
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        return process.returncode == -signal.SIGKILL


def _delays(name: str, wall: float) -> list[float]:
    """Seeded random moments over the command's whole run (interpreter start-up included)."""
    rng = random.Random(f"{SEED}-{name}")
    return sorted(rng.uniform(0.05, wall) for _ in range(KILLS))


def _audit_intact(db: Path, outbox: Path) -> None:
    # The chain alone: each kill point re-copies the database to one path, so the anchor file's newest head of it
    # may be a previous kill point's (anchors are checked in test_audit_log.py).
    env = {**_env(db, outbox), "CAMPAIGN_AUDIT_ANCHORS": str(outbox.parent / "no-anchors")}
    result = run_cli(["audit", KEY, "--verify"], env)
    assert result.code == 0, f"audit chain broken after a crash: {result.err}"


def _record(name: str, killed: int, survived: int, wall: float) -> None:
    FIGURES[name] = {"members": MEMBERS, "kill_points": survived, "killed_mid_run": killed, "clean_run_s": round(wall, 2)}
    print(f"\n[crash] {name}: {survived} kill points survived ({killed} killed mid-run), "
          f"{MEMBERS} members, clean run {wall:.2f} s")


def test_import_is_all_or_nothing(base: Base) -> None:
    full = counts(base.pre_sweep)["evidence"]
    killed = survived = 0
    for n, delay in enumerate(_delays("import", base.wall["import"])):
        db, outbox = base.folder / f"import-{n}.db", base.folder / f"import-{n}-outbox"
        backup(base.pre_import, db)
        killed += _kill_at(["record", "import", str(base.files.records), "--actor", "S000002", "--at", WHEN], db, outbox, delay)
        after = counts(db)
        assert after["evidence"] in (0, full), f"partial import: {after['evidence']} of {full} rows (delay {delay:.2f})"
        assert after["import_record"] in (counts(base.pre_import)["import_record"], counts(base.pre_sweep)["import_record"])
        _audit_intact(db, outbox)
        _ok(["record", "import", str(base.files.records), "--actor", "S000002", "--at", WHEN], db, outbox)
        assert counts(db)["evidence"] == full
        assert counts(db)["import_record"] == counts(base.pre_sweep)["import_record"]
        _audit_intact(db, outbox)
        survived += 1
        db.unlink()
    _record("import", killed, survived, base.wall["import"])
    assert survived >= KILLS


def test_sweep_resumes_to_the_clean_result(base: Base) -> None:
    clean = outcome(base.clean_sweep)
    assert clean.transitions and clean.notice_keys
    killed = survived = 0
    for n, delay in enumerate(_delays("sweep", base.wall["sweep"])):
        db, outbox = base.folder / f"sweep-{n}.db", base.folder / f"sweep-{n}-outbox"
        backup(base.pre_sweep, db)
        killed += _kill_at(["sweep", KEY, "--at", SWEEP_AT], db, outbox, delay)
        assert duplicate_transitions(db) == [], f"a transition logged twice after a kill at {delay:.2f} s"
        outcome(db)  # asserts no notice key twice
        _audit_intact(db, outbox)
        _ok(["sweep", KEY, "--at", SWEEP_AT], db, outbox)
        resumed = outcome(db)
        assert duplicate_transitions(db) == []
        assert resumed.fired == clean.fired
        assert resumed.states == clean.states, f"member states differ from a clean run (kill at {delay:.2f} s)"
        assert resumed.branch_states == clean.branch_states
        assert resumed.transitions == clean.transitions, f"transition log differs (kill at {delay:.2f} s)"
        assert resumed.notice_keys == clean.notice_keys, (
            f"notices differ (kill at {delay:.2f} s): missing {sorted(clean.notice_keys - resumed.notice_keys)[:3]}, "
            f"extra {sorted(resumed.notice_keys - clean.notice_keys)[:3]}"
        )
        _audit_intact(db, outbox)
        survived += 1
        db.unlink()
    _record("sweep", killed, survived, base.wall["sweep"])
    assert survived >= KILLS


def test_dispatch_delivers_every_notice_once(base: Base) -> None:
    keys = base.clean_start.notice_keys  # type: ignore[attr-defined]
    expected = {safe_filename(k) for k in keys}
    assert expected == {p.name for p in eml_files(base.clean_outbox)}
    killed = survived = 0
    for n, delay in enumerate(_delays("dispatch", base.wall["dispatch"])):
        db, outbox = base.folder / f"dispatch-{n}.db", base.folder / f"dispatch-{n}-outbox"
        backup(base.pre_dispatch, db)
        killed += _kill_at(["notify", "dispatch"], db, outbox, delay)
        written = {p.name for p in eml_files(outbox)}
        assert written <= expected, f"a message for no notice: {sorted(written - expected)[:3]}"
        _ok(["notify", "dispatch"], db, outbox)
        written = {p.name for p in eml_files(outbox)}
        assert written == expected, f"missing {len(expected - written)} messages (kill at {delay:.2f} s)"
        with __import__("sqlite3").connect(db) as conn:
            pending = conn.execute("SELECT count(*) FROM notice WHERE status NOT IN ('sent', 'undeliverable')").fetchone()[0]
        assert pending == 0
        assert outcome(db).notice_keys == keys
        _audit_intact(db, outbox)
        survived += 1
        db.unlink()
        shutil.rmtree(outbox)
    _record("dispatch", killed, survived, base.wall["dispatch"])
    assert survived >= KILLS
