"""A synthetic campaign of any size, and the helpers the reliability tests share.

Branches of ~50 people: a branch secretary each; the office's leaders (committee secretary, party-group deputy and
secretary, office director) in the first branch; two inspectors. The plan has the seed's shape (2024), the evidence
is the sample's deterministic demo generator run over this roster.
"""

from __future__ import annotations

import contextlib
import io
import os
import sqlite3
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import yaml

from states.sample import RECORD_FIELDS, ROSTER_FIELDS, demo_records, plan_2024_path, write_csv

KEY = "sfao-2024"
ROOT = Path(__file__).resolve().parents[2]
PYTHON = sys.executable
BRANCH_SIZE = 50
LEADERS = ("party_group_secretary", "committee_secretary", "party_group_deputy", "office_director")


def roster_rows(members: int) -> list[dict[str, str]]:
    rows: list[dict[str, str]] = []
    for n in range(1, members + 1):
        branch = (n - 1) // BRANCH_SIZE + 1
        member_id = f"S{n:06d}"
        if n <= len(LEADERS):
            role = LEADERS[n - 1]
        else:
            role = "branch_secretary" if (n - 1) % BRANCH_SIZE == 4 else "member"
        rows.append({
            "member_id": member_id, "name": f"成员{n}", "branch_id": f"B{branch:04d}",
            "branch_name": f"第{branch}党支部", "unit": "省外办", "role": role,
            "email": f"{member_id.lower()}@example.cn" if n % 17 else "", "locale": "zh-CN" if n % 5 else "en",
        })
    for k in (1, 2):
        rows.append({
            "member_id": f"I{k:03d}", "name": f"巡视员{k}", "branch_id": "", "branch_name": "", "unit": "省外办",
            "role": "inspector", "email": f"i{k}@example.cn", "locale": "zh-CN",
        })
    return rows


@dataclass
class Files:
    roster: Path
    plan: Path
    records: Path
    members: int


def write_campaign(folder: Path, members: int) -> Files:
    """roster.csv, plan.yaml and records.csv of a synthetic office of `members` people."""
    folder.mkdir(parents=True, exist_ok=True)
    roster = write_csv(folder / "roster.csv", roster_rows(members), ROSTER_FIELDS)
    plan_path = folder / "plan.yaml"
    plan_path.write_text(plan_2024_path().read_text(encoding="utf-8"), encoding="utf-8")
    plan = yaml.safe_load(plan_path.read_text(encoding="utf-8"))
    records = write_csv(folder / "records.csv", demo_records(plan, roster), RECORD_FIELDS)
    return Files(roster, plan_path, records, members)


def env_for(db: Path, outbox: Path, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "CAMPAIGN_DATABASE_URL": f"sqlite:///{db}",
        "CAMPAIGN_OUTBOX_DIR": str(outbox),
        "PREFECT_API_URL": "",
        **extra,
    }


def campaign(env: dict[str, str], *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([PYTHON, "-m", "cli.main", *args], capture_output=True, text=True, env=env, cwd=ROOT)
    if check and done.returncode != 0:
        raise AssertionError(f"campaign {' '.join(args)} → {done.returncode}\n{done.stdout}\n{done.stderr}")
    return done


@dataclass
class CliResult:
    code: int
    out: str
    err: str


def run_cli(args: list[str], env: dict[str, str] | None = None) -> CliResult:
    """The `campaign` entry point in-process (fast): exit code, stdout and stderr, as a user sees them."""
    from cli import main as cli_module

    out, err = io.StringIO(), io.StringIO()
    saved_env = {k: os.environ.get(k) for k in (env or {})}
    os.environ.update(env or {})
    saved_argv = sys.argv
    sys.argv = ["campaign", *args]
    code = 0
    saved_umask = os.umask(0o022)  # main() makes the process's files private: this process's mask comes back after
    os.umask(saved_umask)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                cli_module.main()
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        os.umask(saved_umask)
        sys.argv = saved_argv
        for k, v in saved_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return CliResult(code, out.getvalue(), err.getvalue())


def backup(source: Path, target: Path) -> None:
    """A consistent copy of a SQLite database (WAL included)."""
    with contextlib.closing(sqlite3.connect(source)) as src, contextlib.closing(sqlite3.connect(target)) as dst:
        src.backup(dst)


TABLES = (
    "unit", "branch", "person", "branch_history", "campaign", "phase", "member_progress", "branch_progress",
    "import_record", "evidence", "ballot_meeting", "ballot_tally", "appraisal", "fired_deadline", "done_chunk",
    "transition_log", "audit_seal", "notice",
)


def counts(db: Path) -> dict[str, int]:
    with contextlib.closing(sqlite3.connect(db)) as conn:
        return {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in TABLES}  # noqa: S608


@dataclass
class Outcome:
    """What a run leaves behind, comparable between a clean run and a crashed-and-resumed one."""

    transitions: Counter[tuple[object, ...]]
    states: dict[str, str]
    branch_states: dict[str, str]
    notice_keys: set[str]
    evidence: int
    fired: set[str]


def outcome(db: Path) -> Outcome:
    with contextlib.closing(sqlite3.connect(db)) as conn:
        transitions = Counter(
            tuple(r)
            for r in conn.execute(
                "SELECT member_id, branch_id, from_state, to_state, trigger, cause FROM transition_log"
                " WHERE cause = 'sweep'"
            )
        )
        states = dict(conn.execute("SELECT member_id, state FROM member_progress"))
        branch_states = dict(conn.execute("SELECT branch_id, state FROM branch_progress"))
        keys = [k for (k,) in conn.execute("SELECT key FROM notice")]
        assert len(keys) == len(set(keys)), "a notice key is queued twice"
        evidence = conn.execute("SELECT count(*) FROM evidence").fetchone()[0]
        fired = {p for (p,) in conn.execute("SELECT name FROM fired_deadline")}
    return Outcome(transitions, states, branch_states, set(keys), evidence, fired)


def duplicate_transitions(db: Path) -> list[tuple[object, ...]]:
    """(member, branch, trigger, from, to) logged more than once: a transition applied twice."""
    with contextlib.closing(sqlite3.connect(db)) as conn:
        return list(
            conn.execute(
                "SELECT member_id, branch_id, trigger, from_state, to_state, count(*) FROM transition_log"
                " WHERE cause = 'sweep' GROUP BY member_id, branch_id, trigger, from_state, to_state, campaign_key"
                " HAVING count(*) > 1 LIMIT 5"
            )
        )


def eml_files(outbox: Path) -> Iterator[Path]:
    return outbox.glob("*.eml") if outbox.exists() else iter(())
