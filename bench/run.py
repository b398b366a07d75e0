"""`make bench`: a synthetic campaign of N members timed through the real code paths, on SQLite and PostgreSQL.

Every step runs in a child process of its own (`python -m bench.run --step …`), so its peak memory (RSS high-water
mark, `resource.getrusage`) is that step's alone, imports included. The same run measures a hand-written floor
(Python's sqlite3, no ORM) and the per-member alternatives on a sample, extrapolated and labelled so.

    make bench                                   # SIZES=10000,100000
    SIZES=1000000 make bench                     # the full run (not part of CI)
    .venv/bin/python -m bench.run --sizes 1000000 --dialects sqlite --no-alternatives   # 1M on SQLite: ~2.5 min
    .venv/bin/python -m bench.run --sizes 10000 --dialects sqlite --no-alternatives
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

KEY = "bench-2024"
BENCH_SEAL_KEY = bytes.fromhex(os.environ.get("CAMPAIGN_AUDIT_KEY", "")) or b"bench audit seal key, 32 bytes.."
"""The bench seals under CAMPAIGN_AUDIT_KEY when given (the tests' workers verify what they sealed), else under a
fixed key of its own: it measures, it keeps nothing."""
TZ = dt.timezone(dt.timedelta(hours=8))  # Asia/Shanghai, no DST
PHASES = [
    ("study", "2024-03-25", "2024-04-30"),
    ("analysis", "2024-05-01", "2024-05-31"),
    ("rectification", "2024-06-01", "2024-07-31"),
    ("consolidation", "2024-08-01", "2024-08-15"),
    ("pledge", "2024-08-16", "2024-08-31"),
]
AT_LOAD = "2024-03-01T09:00:00+08:00"
AT_START = "2024-03-25T00:00:01+08:00"
AT_REMIND = "2024-04-24T00:05:00+08:00"  # the study deadline minus 7 days: the 7-day reminder is due
LATE_EVERY = 100
"""One member in LATE_EVERY has a self-study sitting dated after the tick (2024-04-27: a record entered ahead of
its date). Every other row is dated by 2024-04-23, as evidence is in a live campaign (a row is not dated after the
day it is imported), so at the tick most members are read from their kept facts alone and these few take the
fallback: their study window runs past the tick's cut-off, so it is tallied from their evidence rows."""
AT_STUDY = "2024-05-01T00:00:01+08:00"
BRANCH_SIZE = 50
SHORT_EVERY = int(os.environ.get("BENCH_SHORT_EVERY", "3"))  # one member in three falls short of the study hours
PG_ADMIN = os.environ.get("CAMPAIGN_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
ROOT = Path(__file__).resolve().parent.parent


def _at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).astimezone(dt.UTC)


# -- the synthetic campaign ----------------------------------------------------------------------------------------


def member_id(i: int) -> str:
    return f"M{i:08d}"


SECRETARY = member_id(2)
"""The committee secretary of `generate`'s roster: imports and plan loads are acts with authority."""


def branch_id(i: int) -> str:
    return f"B{i // BRANCH_SIZE:06d}"


def is_short(i: int) -> bool:
    """One member in SHORT_EVERY falls short of the study hours (the issue's shape: stuck members cost most)."""
    return i % SHORT_EVERY == 7 % SHORT_EVERY


def is_late(i: int) -> bool:
    """The fallback case at the tick (see LATE_EVERY); never a short member, so the tick's reminders stay the
    short ones and the failing checks."""
    return i % LATE_EVERY == 41 and not is_short(i)


def generate(n: int, folder: Path, seed: int = 6) -> dict[str, Any]:
    """roster.csv, records.csv and plan.yaml of an office of `n` people: branches of ~50, the responsibility chain
    (party-group secretary and deputy, committee secretaries), an office director, a secretary per branch; six
    evidence rows per member (the study phase's mix), one in SHORT_EVERY short of the study hours, one in fifty failing the
    check; each branch's mobilisation meeting, three training days and its discussion meeting. Every row is dated
    by the day before the 7-day reminder's tick, but for one member in LATE_EVERY (`is_late`)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    chain = {0: "party_group_secretary", 1: "party_group_deputy", 2: "committee_secretary", 3: "office_director"}
    with open(folder / "roster.csv", "w", encoding="utf-8", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["member_id", "name", "branch_id", "branch_name", "unit", "role", "email"])
        for i in range(n):
            b = branch_id(i)
            role = chain.get(i) or ("branch_secretary" if i % BRANCH_SIZE == 4 else "member")
            out.writerow([member_id(i), f"党员{i}", b, f"第{i // BRANCH_SIZE}党支部", f"单位{i // 5000}", role,
                          f"{member_id(i).lower()}@bench.example.cn"])
    members = branches = 0
    with open(folder / "records.csv", "w", encoding="utf-8", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["member_id", "branch_id", "kind", "date", "value", "ref"])
        ref = 0
        for start in range(0, n, BRANCH_SIZE):
            b = branch_id(start)
            size = min(BRANCH_SIZE, n - start)
            for kind, day, value in (
                ("mobilization_meeting", "2024-03-26", size - 1),
                ("concentrated_training", "2024-04-02", ""),
                ("concentrated_training", "2024-04-09", ""),
                ("concentrated_training", "2024-04-16", ""),
                ("discussion_meeting", "2024-04-20", size - 2 if size > 2 else size),
            ):
                ref += 1
                out.writerow(["", b, kind, day, value, f"R{ref}"])
                branches += 1
            for i in range(start, start + size):
                m = member_id(i)
                short = is_short(i)
                self_hours = 10 if short else rng.choice((14, 15, 16))
                rows = [
                    ("study_concentrated", "2024-04-02", 8),
                    ("study_concentrated", "2024-04-09", 8),
                    ("study_concentrated", "2024-04-16", 8),
                    ("study_self", f"2024-04-{rng.randint(1, 13):02d}", self_hours),
                    ("study_self", "2024-04-27" if is_late(i) else f"2024-04-{rng.randint(14, 22):02d}",
                     self_hours),
                    ("study_check", "2024-04-23", "fail" if i % 50 == 13 else "pass"),
                ]
                for kind, day, value in rows:
                    ref += 1
                    out.writerow([m, b, kind, day, value, f"R{ref}"])
                    members += 1
    phases = "\n".join(f"  - {{name: {p}, start: {s}, end: {e}}}" for p, s, e in PHASES)
    (folder / "plan.yaml").write_text(
        f"key: {KEY}\ntitle: bench\ntimezone: Asia/Shanghai\nphases:\n{phases}\n"
        "thresholds: {study_hours: 50, concentrated_days: 3, publicity_days: 5, excellent_max_fraction: \"1/3\"}\n"
        "reminders_days_before: [7, 3, 1]\nescalation_days: {direct: 3, second: 7, first: 14}\n",
        encoding="utf-8",
    )
    return {"members": n, "branches": (n + BRANCH_SIZE - 1) // BRANCH_SIZE, "evidence": members + branches}


# -- the steps, each run in a child process -------------------------------------------------------------------------


def _engine(url: str) -> Any:
    from states.db import make_engine

    return make_engine(url)


def step_setup(url: str, data: Path, n: int) -> dict[str, Any]:
    """The plan, loaded (as imports are acts with authority) by the committee secretary, whom a roster of the
    responsibility chain alone (the big roster's first rows, the same values) makes known first; the timed roster
    import then still enrols everyone else into the running campaign."""
    from sqlalchemy.orm import Session

    from readers import read_table
    from states import audit
    from states.db import ensure_schema
    from states.plan import load_plan, read_plan
    from states.roster import import_roster

    engine = _engine(url)
    ensure_schema(engine)
    with open(data / "roster.csv", encoding="utf-8", newline="") as fh:
        head = [next(fh) for _ in range(5)]  # the header and the chain: rows 0..3
    (data / "leaders.csv").write_text("".join(head), encoding="utf-8")
    plan, _ = read_plan(data / "plan.yaml")
    with Session(engine) as session, session.begin():
        import_roster(session, read_table(data / "leaders.csv"), SECRETARY, _at(AT_LOAD))
        load_plan(session, plan, SECRETARY, _at(AT_LOAD))
        audit.seal(session, _at(AT_LOAD), BENCH_SEAL_KEY)
    return {}


def _import(url: str, path: Path, which: str) -> dict[str, Any]:
    from sqlalchemy.orm import Session

    from readers import read_table
    from states import audit

    engine = _engine(url)
    if which == "roster":
        from states.roster import import_roster as run
    else:
        from states.records import import_records as run  # type: ignore[assignment]
    started = time.perf_counter()
    with Session(engine) as session, session.begin():
        result = run(session, read_table(path), SECRETARY, _at(AT_LOAD))
        audit.seal(session, _at(AT_LOAD), BENCH_SEAL_KEY)
    return {"timed": time.perf_counter() - started, **vars(result)}


def step_roster(url: str, data: Path, n: int) -> dict[str, Any]:
    return _import(url, data / "roster.csv", "roster")


def step_records(url: str, data: Path, n: int) -> dict[str, Any]:
    return _import(url, data / "records.csv", "records")


def _sweep(url: str, at: str) -> dict[str, Any]:
    from sqlalchemy.orm import Session

    from states.settings import Settings
    from states.sweep import plan_sweep, run_units, sweep

    engine = _engine(url)
    per_chunk = Settings().chunk_branches
    with Session(engine) as session, session.begin():
        plan = plan_sweep(session, KEY, _at(at), per_chunk)
        units = list(run_units(plan))
        session.rollback()
    started = time.perf_counter()
    report = sweep(engine, KEY, _at(at), seal_key=BENCH_SEAL_KEY, actor="bench", branches_per_chunk=per_chunk)
    return {"timed": time.perf_counter() - started, "chunks": len(plan.chunks), "units": len(units),
            **report.as_json()}


def step_sweep_start(url: str, data: Path, n: int) -> dict[str, Any]:
    return _sweep(url, AT_START)


def step_reminders(url: str, data: Path, n: int) -> dict[str, Any]:
    out = _sweep(url, AT_REMIND)
    from sqlalchemy import func, select
    from sqlalchemy.orm import Session

    from states.models import Notice

    with Session(_engine(url)) as session:
        out["reminders"] = session.scalar(
            select(func.count()).select_from(Notice).where(Notice.event == "deadline_reminder")
        )
    return out


def step_sweep_study(url: str, data: Path, n: int) -> dict[str, Any]:
    out = _sweep(url, AT_STUDY)
    from sqlalchemy import func, select
    from sqlalchemy.orm import Session

    from states.models import Notice

    with Session(_engine(url)) as session:
        out["notices"] = session.scalar(select(func.count()).select_from(Notice))
    return out


def step_status(url: str, data: Path, n: int) -> dict[str, Any]:
    from sqlalchemy.orm import Session

    from states.status import summary

    engine = _engine(url)
    with Session(engine) as session:
        # The first call also opens the connection and compiles the statements: reported, but the figure is what a
        # running service answers with, the median of five calls after it (as `explain` is timed warm).
        started = time.perf_counter()
        facts = summary(session, KEY, _at(AT_STUDY))
        cold = time.perf_counter() - started
        runs = []
        for _ in range(5):
            started = time.perf_counter()
            summary(session, KEY, _at(AT_STUDY))
            runs.append(time.perf_counter() - started)
        return {"timed": statistics.median(runs), "cold_s": round(cold, 4), "members": facts["members"],
                "stuck": facts["stuck"]}


def step_explain(url: str, data: Path, n: int) -> dict[str, Any]:
    from sqlalchemy.orm import Session

    from states.status import member_view

    engine = _engine(url)
    who = member_id(next(i for i in range(n // 2, n) if is_short(i)))
    with Session(engine) as session:
        member_view(session, KEY, member_id(8), _at(AT_STUDY))  # connection and caches warm
        started = time.perf_counter()
        view = member_view(session, KEY, who, _at(AT_STUDY))
        return {"timed": time.perf_counter() - started, "member": who, "state": view["state"],
                "unmet": [u["condition"] for u in view["unmet"]]}


def step_explain_cmd(url: str, data: Path, n: int) -> dict[str, Any]:
    who = member_id(next(i for i in range(n // 2, n) if is_short(i)))
    env = {**os.environ, "CAMPAIGN_DATABASE_URL": url}
    started = time.perf_counter()
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "campaign"), "explain", KEY, "--member", who, "--at", AT_STUDY, "--json"],
        env=env, capture_output=True, text=True, check=False,
    )
    took = time.perf_counter() - started
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr)
    child_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {"timed": took, "member": who, "state": json.loads(proc.stdout)["state"], "child_peak_mb": child_mb}


def _floor_url(data: Path) -> Path:
    return data / "floor.db"


def step_floor(url: str, data: Path, n: int) -> dict[str, Any]:
    """The hand-written floor: sqlite3, executemany, one aggregate, one UPDATE, one log INSERT…SELECT, notices."""
    import sqlite3

    path = _floor_url(data)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.executescript(
        """
        CREATE TABLE person(member_id TEXT PRIMARY KEY, branch_id TEXT, role TEXT);
        CREATE INDEX ix_person_branch ON person(branch_id);
        CREATE TABLE progress(member_id TEXT PRIMARY KEY, state TEXT, version INT, step TEXT);
        CREATE TABLE evidence(id INTEGER PRIMARY KEY, member_id TEXT, branch_id TEXT, kind TEXT, date TEXT,
                              value TEXT, num REAL, ref TEXT UNIQUE);
        CREATE INDEX ix_ev_member ON evidence(member_id, kind, date);
        CREATE TABLE log(id INTEGER PRIMARY KEY, member_id TEXT, from_state TEXT, to_state TEXT, at TEXT);
        CREATE TABLE outbox(key TEXT PRIMARY KEY, recipient TEXT, event TEXT);
        """
    )
    with open(data / "roster.csv", encoding="utf-8", newline="") as fh:
        reader = csv.reader(fh)
        next(reader)
        db.execute("BEGIN")
        db.executemany("INSERT INTO person VALUES (?,?,?)", ((r[0], r[2], r[5]) for r in reader))
        db.execute("INSERT INTO progress SELECT member_id, 'study', 1, NULL FROM person")
        db.execute("COMMIT")
    started = time.perf_counter()
    with open(data / "records.csv", encoding="utf-8", newline="") as fh:
        reader = csv.reader(fh)
        next(reader)
        db.execute("BEGIN")
        db.executemany(
            "INSERT INTO evidence(member_id, branch_id, kind, date, value, num, ref) VALUES (?,?,?,?,?,?,?)",
            ((r[0] or None, r[1], r[2], r[3], r[4], float(r[4]) if r[2].startswith("study_") and r[2] != "study_check"
              else None, r[5]) for r in reader),
        )
        db.execute("COMMIT")
    load = time.perf_counter() - started
    started = time.perf_counter()
    db.execute("BEGIN")
    db.execute(
        """CREATE TEMP TABLE ready AS SELECT member_id FROM evidence WHERE member_id IS NOT NULL
           AND date <= '2024-04-30' GROUP BY member_id
           HAVING sum(CASE WHEN kind IN ('study_self','study_concentrated') THEN num END) >= 50
              AND count(DISTINCT CASE WHEN kind='study_concentrated' THEN date END) >= 3
              AND max(CASE WHEN kind='study_check' THEN date || value END) LIKE '%pass'"""
    )
    db.execute("UPDATE progress SET state='analysis', version=version+1, step='s1' "
               "WHERE state='study' AND member_id IN (SELECT member_id FROM ready)")
    db.execute("INSERT INTO log(member_id, from_state, to_state, at) "
               "SELECT member_id, 'study', state, '2024-05-01' FROM progress WHERE step='s1'")
    db.execute("INSERT OR IGNORE INTO outbox SELECT member_id || ':phase_started:analysis', member_id, "
               "'phase_started' FROM progress WHERE step='s1'")
    db.execute("INSERT OR IGNORE INTO outbox SELECT member_id || ':member_stuck:study', member_id, 'member_stuck' "
               "FROM progress WHERE state='study'")
    db.execute("INSERT OR IGNORE INTO outbox SELECT s.member_id || ':member_stuck:' || p.member_id, s.member_id, "
               "'member_stuck' FROM progress mp JOIN person p ON p.member_id = mp.member_id "
               "JOIN person s ON s.branch_id = p.branch_id AND s.role = 'branch_secretary' "
               "AND s.member_id != p.member_id WHERE mp.state='study'")
    db.execute("COMMIT")
    decide = time.perf_counter() - started
    moved = db.execute("SELECT count(*) FROM log").fetchone()[0]
    db.close()
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    return {"load": load, "decide": decide, "moved": moved}


def _floor_rows(reader: Any) -> Any:
    for r in reader:
        hours = r[2] in ("study_self", "study_concentrated")
        yield (r[0] or None, r[1], r[2], r[3], r[4], float(r[4]) if hours else None, r[5])


def step_floor_pg(url: str, data: Path, n: int) -> dict[str, Any]:
    """The hand-written PostgreSQL floor: psycopg, COPY, one aggregate, one UPDATE, one log INSERT … SELECT and the
    same notices as the SQLite floor, in one transaction (`url`: an empty database of its own)."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as db:
        db.execute(
            """
            CREATE TABLE person(member_id TEXT PRIMARY KEY, branch_id TEXT, role TEXT);
            CREATE INDEX ix_person_branch ON person(branch_id);
            CREATE TABLE progress(member_id TEXT PRIMARY KEY, state TEXT, version INT, step TEXT);
            CREATE TABLE evidence(id BIGSERIAL PRIMARY KEY, member_id TEXT, branch_id TEXT, kind TEXT, date DATE,
                                  value TEXT, num DOUBLE PRECISION, ref TEXT UNIQUE);
            CREATE INDEX ix_ev_member ON evidence(member_id, kind, date);
            CREATE TABLE log(id BIGSERIAL PRIMARY KEY, member_id TEXT, from_state TEXT, to_state TEXT, at TEXT);
            CREATE TABLE outbox(key TEXT PRIMARY KEY, recipient TEXT, event TEXT);
            """
        )
        with open(data / "roster.csv", encoding="utf-8", newline="") as fh, db.transaction():
            reader = csv.reader(fh)
            next(reader)
            with db.cursor() as cur, cur.copy("COPY person (member_id, branch_id, role) FROM STDIN") as copy:
                for r in reader:
                    copy.write_row((r[0], r[2], r[5]))
            db.execute("INSERT INTO progress SELECT member_id, 'study', 1, NULL FROM person")
        started = time.perf_counter()
        with open(data / "records.csv", encoding="utf-8", newline="") as fh, db.transaction():
            reader = csv.reader(fh)
            next(reader)
            with db.cursor() as cur, cur.copy(
                "COPY evidence (member_id, branch_id, kind, date, value, num, ref) FROM STDIN"
            ) as copy:
                for row in _floor_rows(reader):
                    copy.write_row(row)
        load = time.perf_counter() - started
        db.execute("ANALYZE")  # untimed: fresh statistics make the floor's decide as fast as it gets
        started = time.perf_counter()
        with db.transaction():
            db.execute(
                """CREATE TEMP TABLE ready AS SELECT member_id FROM evidence WHERE member_id IS NOT NULL
                   AND date <= '2024-04-30' GROUP BY member_id
                   HAVING sum(CASE WHEN kind IN ('study_self','study_concentrated') THEN num END) >= 50
                      AND count(DISTINCT CASE WHEN kind='study_concentrated' THEN date END) >= 3
                      AND max(CASE WHEN kind='study_check' THEN date::text || value END) LIKE '%pass'"""
            )
            db.execute("UPDATE progress SET state='analysis', version=version+1, step='s1' "
                       "WHERE state='study' AND member_id IN (SELECT member_id FROM ready)")
            db.execute("INSERT INTO log(member_id, from_state, to_state, at) "
                       "SELECT member_id, 'study', state, '2024-05-01' FROM progress WHERE step='s1'")
            db.execute("INSERT INTO outbox SELECT member_id || ':phase_started:analysis', member_id, "
                       "'phase_started' FROM progress WHERE step='s1' ON CONFLICT DO NOTHING")
            db.execute("INSERT INTO outbox SELECT member_id || ':member_stuck:study', member_id, 'member_stuck' "
                       "FROM progress WHERE state='study' ON CONFLICT DO NOTHING")
            db.execute("INSERT INTO outbox SELECT s.member_id || ':member_stuck:' || p.member_id, s.member_id, "
                       "'member_stuck' FROM progress mp JOIN person p ON p.member_id = mp.member_id "
                       "JOIN person s ON s.branch_id = p.branch_id AND s.role = 'branch_secretary' "
                       "AND s.member_id != p.member_id WHERE mp.state='study' ON CONFLICT DO NOTHING")
        decide = time.perf_counter() - started
        moved = db.execute("SELECT count(*) FROM log").fetchone()
    return {"load": load, "decide": decide, "moved": moved[0] if moved else 0}


def step_orm_machine(url: str, data: Path, n: int) -> dict[str, Any]:
    """The per-member alternative: one ORM object, one condition query and one transitions Machine per member."""
    from sqlalchemy import select
    from sqlalchemy.orm import Session
    from transitions import Machine

    from states.evaluate import context, evaluate_member, member_edge
    from states.machine import PHASES as NAMES
    from states.models import MemberProgress

    sample = min(n, 300)
    engine = _engine(url)

    class Subject:
        pass

    with Session(engine) as session:
        ctx = context(session, KEY, _at(AT_STUDY))
        edge = member_edge("study")
        assert edge is not None
        started = time.perf_counter()
        progress = session.scalars(
            select(MemberProgress).where(MemberProgress.campaign_key == KEY).limit(sample)
        ).all()
        moved = 0
        for row in progress:
            subject = Subject()
            machine = Machine(model=subject, states=["enrolled", *NAMES], initial="study", auto_transitions=False)
            machine.add_transition("advance", "study", "analysis",
                                   conditions=lambda m=row.member_id: all(
                                       r.ok for r in evaluate_member(session, ctx, m, edge)))
            if subject.advance():  # type: ignore[attr-defined]
                row.state = subject.state  # type: ignore[attr-defined]
                moved += 1
        took = time.perf_counter() - started
        session.rollback()
    return {"sample": len(progress), "timed": took, "per_member_ms": took / max(len(progress), 1) * 1000,
            "extrapolated": took / max(len(progress), 1) * n}


PREFECT_SCRIPT = r"""
import json, sys, time
from prefect import flow, task

@task
def one(i: int) -> int:
    return i % 10 != 7

@flow
def per_member(count: int) -> float:
    started = time.perf_counter()
    futures = [one.submit(i) for i in range(count)]
    moved = sum(f.result() for f in futures)
    return time.perf_counter() - started

count = int(sys.argv[1])
took = per_member(count)
print(json.dumps({"tasks": count, "timed": took}))
"""


def step_prefect(url: str, data: Path, n: int) -> dict[str, Any]:
    """A Prefect task per member on ~200 members (an ephemeral server), extrapolated to n."""
    sample = 200
    home = tempfile.mkdtemp(prefix="bench-prefect-")
    env = {
        **os.environ,
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "1",
        "PREFECT_HOME": home,
        "PREFECT_API_URL": "",
        "PREFECT_SERVER_ALLOW_EPHEMERAL_MODE": "true",
        "PREFECT_LOGGING_LEVEL": "ERROR",
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "300",
    }
    env.pop("PREFECT_API_URL")
    try:
        proc = subprocess.run([sys.executable, "-c", PREFECT_SCRIPT, str(sample)], env=env, capture_output=True,
                              text=True, timeout=600, check=False)
    finally:
        shutil.rmtree(home, ignore_errors=True)
    if proc.returncode != 0:
        return {"error": proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "failed"}
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    per = got["timed"] / got["tasks"]
    return {"sample": got["tasks"], "timed": got["timed"], "per_task_ms": per * 1000, "extrapolated": per * n}


STEPS: dict[str, Callable[[str, Path, int], dict[str, Any]]] = {
    "setup": step_setup,
    "roster": step_roster,
    "records": step_records,
    "sweep_start": step_sweep_start,
    "reminders": step_reminders,
    "sweep_study": step_sweep_study,
    "status": step_status,
    "explain": step_explain,
    "explain_cmd": step_explain_cmd,
    "floor": step_floor,
    "floor_pg": step_floor_pg,
    "orm_machine": step_orm_machine,
    "prefect_per_member": step_prefect,
}
DB_STEPS = ["setup", "roster", "records", "sweep_start", "reminders", "sweep_study", "status", "explain",
            "explain_cmd"]


def child(step: str, url: str, data: Path, n: int) -> None:
    started = time.perf_counter()
    out = STEPS[step](url, data, n)
    seconds = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    peak_mb = max(peak_mb, out.pop("child_peak_mb", 0))
    print(json.dumps({"step": step, "seconds": seconds, "peak_mb": peak_mb, **out}, default=str))


def run_step(step: str, url: str, data: Path, n: int) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, "-m", "bench.run", "--step", step, "--url", url, "--data", str(data), "--n", str(n)],
        cwd=ROOT, capture_output=True, text=True, check=False,
    )
    if proc.returncode != 0:
        raise SystemExit(f"bench step {step} failed:\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# -- databases -----------------------------------------------------------------------------------------------------


def _pg_create() -> str | None:
    try:
        import psycopg

        name = f"bench_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=3) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
    except Exception as exc:  # noqa: BLE001 - any failure: no PostgreSQL for this run
        print(f"PostgreSQL skipped: nothing answers at {PG_ADMIN} ({str(exc).splitlines()[0]})", file=sys.stderr)
        return None
    return name


def _pg_drop(name: str) -> None:
    import psycopg

    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _timed(result: dict[str, Any]) -> float:
    return float(result.get("timed", result["seconds"]))


def bench_size(n: int, dialects: list[str], alternatives: bool, work: Path) -> list[dict[str, Any]]:
    data = work / f"n{n}"
    started = time.perf_counter()
    shape = generate(n, data)
    print(f"\n== {n:,} members: {shape['branches']:,} branches, {shape['evidence']:,} evidence rows "
          f"(generated in {time.perf_counter() - started:.1f} s) ==", flush=True)
    lines: list[dict[str, Any]] = []
    floors: dict[str, dict[str, Any]] = {}
    if "sqlite" in dialects:
        floors["sqlite"] = run_step("floor", "", data, n)
    for dialect in dialects:
        pg_name = None
        if dialect == "sqlite":
            path = data / "campaign.db"
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
            url = f"sqlite:///{path}"
        else:
            pg_name = _pg_create()
            if pg_name is None:
                continue
            url = PG_ADMIN.replace("postgresql://", "postgresql+psycopg://").rsplit("/", 1)[0] + "/" + pg_name
        results: dict[str, dict[str, Any]] = {}
        try:
            for step in DB_STEPS:
                results[step] = run_step(step, url, data, n)
                r = results[step]
                print(f"  {dialect:10} {step:12} {_timed(r):9.3f} s  peak {r['peak_mb']:7.0f} MB", flush=True)
            if alternatives and dialect == "sqlite":
                results["orm_machine"] = run_step("orm_machine", url, data, n)
        finally:
            if pg_name:
                _pg_drop(pg_name)
            elif dialect == "sqlite":
                for suffix in ("", "-wal", "-shm"):
                    Path(f"{data / 'campaign.db'}{suffix}").unlink(missing_ok=True)
        if alternatives and dialect == "sqlite":
            results["prefect_per_member"] = run_step("prefect_per_member", "", data, n)
        if dialect == "postgresql":
            floor_db = _pg_create()
            if floor_db is not None:
                try:
                    floors["postgresql"] = run_step("floor_pg", PG_ADMIN.rsplit("/", 1)[0] + "/" + floor_db, data, n)
                finally:
                    _pg_drop(floor_db)
        line = {
            "size": n,
            "dialect": dialect,
            "branches": shape["branches"],
            "evidence_rows": shape["evidence"],
            "steps": {
                step: {
                    "seconds": round(_timed(r), 4),
                    "members_per_s": round(n / _timed(r)) if _timed(r) > 0 else None,
                    "peak_mb": round(r["peak_mb"]),
                    **{k: v for k, v in r.items() if k in ("chunks", "units", "extrapolated", "per_member_ms",
                                                             "per_task_ms", "sample", "reminders", "notices", "cold_s",
                                                             "advanced", "stuck", "error")},
                }
                for step, r in results.items()
            },
        }
        floor = floors.get(dialect)
        if floor is not None:
            line["floor"] = {"load_s": round(floor["load"], 3), "decide_s": round(floor["decide"], 3),
                             "moved": floor["moved"], "peak_mb": round(floor["peak_mb"]),
                             "driver": "sqlite3" if dialect == "sqlite" else "psycopg"}
            line["ratios"] = {
                "records_import/floor_load": round(_timed(results["records"]) / floor["load"], 2),
                "study_sweep/floor_decide": round(_timed(results["sweep_study"]) / floor["decide"], 2),
                # The daily tick with no deadline due: reminders, the stuck pass and the digest.
                "reminders_tick/floor_decide": round(_timed(results["reminders"]) / floor["decide"], 2),
            }
            swept = (results["sweep_study"].get("advanced") or {}).get("members")
            if swept != floor["moved"]:  # the floor must decide the same moves, or its ratio means nothing
                line["floor"]["warning"] = f"the floor moved {floor['moved']}, the sweep {swept}"
            if "orm_machine" in results:
                line["ratios"]["orm_machine_per_member/study_sweep (extrapolated)"] = round(
                    results["orm_machine"]["extrapolated"] / _timed(results["sweep_study"]), 1)
            pm = results.get("prefect_per_member", {})
            if "extrapolated" in pm:
                line["ratios"]["prefect_task_per_member/study_sweep (extrapolated)"] = round(
                    pm["extrapolated"] / _timed(results["sweep_study"]), 1)
        lines.append(line)
    return lines


def table(lines: list[dict[str, Any]]) -> str:
    steps = [*DB_STEPS[1:], "orm_machine", "prefect_per_member"]
    out = [f"{'size':>9} {'dialect':10} {'step':18} {'seconds':>9} {'members/s':>11} {'peak MB':>8}  note"]
    for line in lines:
        for step in steps:
            r = line["steps"].get(step)
            if r is None:
                continue
            note = ""
            if "units" in r:
                note = f"{r['chunks']} chunks, {r['units']} Prefect units"
            if "extrapolated" in r:
                per = r.get("per_member_ms") or r.get("per_task_ms")
                note = (f"sample {r['sample']}, {per:.2f} ms each → {r['extrapolated']:.0f} s for "
                        f"{line['size']:,} (EXTRAPOLATED)")
            if "error" in r:
                note = f"error: {r['error']}"
            out.append(f"{line['size']:>9} {line['dialect']:10} {step:18} {r['seconds']:9.3f} "
                       f"{r['members_per_s'] or 0:>11,} {r['peak_mb']:>8}  {note}")
        if "floor" in line:
            f = line["floor"]
            how = "executemany" if f["driver"] == "sqlite3" else "COPY"
            out.append(f"{line['size']:>9} {f['driver']:10} {'floor load':18} {f['load_s']:9.3f} "
                       f"{round(line['size'] / f['load_s']):>11,} {f['peak_mb']:>8}  hand-written {how}")
            out.append(f"{line['size']:>9} {f['driver']:10} {'floor decide':18} {f['decide_s']:9.3f} "
                       f"{round(line['size'] / f['decide_s']):>11,} {'':>8}  aggregate+UPDATE+log+notices")
            if "warning" in f:
                out.append(f"{'':>9} WARNING: {f['warning']}")
            out.append(f"{'':>9} ratios: " + ", ".join(f"{k} = {v}" for k, v in line["ratios"].items()))
    return "\n".join(out)


def main(argv: list[str] | None = None) -> None:
    global SHORT_EVERY
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="10000,100000", help="comma-separated member counts")
    parser.add_argument("--dialects", default="sqlite,postgresql")
    parser.add_argument("--no-alternatives", action="store_true", help="skip the per-member ORM/Prefect samples")
    parser.add_argument("--work", default=None, help="folder for the generated files (default: a temporary one)")
    parser.add_argument("--short-every", type=int, default=SHORT_EVERY,
                        help="one member in N falls short of the study hours (default 3)")
    parser.add_argument("--step", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    parser.add_argument("--n", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    SHORT_EVERY = args.short_every
    os.environ["BENCH_SHORT_EVERY"] = str(SHORT_EVERY)  # the steps' child processes read it too
    if args.step:
        child(args.step, args.url, Path(args.data), args.n)
        return
    sizes = [int(s.replace("_", "")) for s in args.sizes.split(",") if s.strip()]
    dialects = [d.strip() for d in args.dialects.split(",") if d.strip()]
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="campaign-bench-"))
    lines: list[dict[str, Any]] = []
    try:
        for n in sizes:
            lines += bench_size(n, dialects, not args.no_alternatives, work)
            shutil.rmtree(work / f"n{n}", ignore_errors=True)
    finally:
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)
    print()
    print(table(lines))
    print()
    for line in lines:
        print(json.dumps(line, ensure_ascii=False))


if __name__ == "__main__":
    main()
