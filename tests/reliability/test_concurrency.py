"""Concurrent writers: sweeps, a retry and an import started together, on SQLite (they take turns) and PostgreSQL
(they overlap); the end state is the clean sequential one, nothing happens twice, the audit chain is intact."""

from __future__ import annotations

import multiprocessing
from collections import Counter
from pathlib import Path

import yaml
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from states.db import ensure_schema, make_engine
from states.models import Evidence, FiredDeadline, MemberProgress, Notice, TransitionLog
from states.sample import RECORD_FIELDS, demo_shortfalls, plan_2024_path, roster_path, write_csv
from tests.fixtures import KEY, load_sample
from tests.reliability.synth import run_cli

T = "2024-05-02T10:00"
RUNS: dict[str, int] = {}


def _mending(folder: Path) -> tuple[Path, list[str]]:
    """Study hours, dated after the study deadline, for the members the demo leaves short of hours."""
    plan = yaml.safe_load(plan_2024_path().read_text(encoding="utf-8"))
    short = demo_shortfalls(plan, roster_path())["short_hours"]
    rows = [
        {"member_id": m, "branch_id": "", "kind": "study_self", "date": "2024-05-01", "value": "8", "ref": ""}
        for m in short for _ in range(7)
    ]
    return write_csv(folder / "mending.csv", rows, RECORD_FIELDS), short


def _branches(engine: Engine, rows_path: Path) -> None:
    """Fill each row's branch from the roster (the file must name the member's branch)."""
    import csv

    from states.models import Person

    with Session(engine) as s, rows_path.open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
        for row in rows:
            row["branch_id"] = s.get(Person, row["member_id"]).branch_id  # type: ignore[union-attr]
    write_csv(rows_path, rows, RECORD_FIELDS)


def _cli(url: str, args: list[str]) -> tuple[int, str]:
    result = run_cli(args, {"CAMPAIGN_DATABASE_URL": url, "PREFECT_API_URL": ""})
    return result.code, result.err


def _state(engine: Engine) -> tuple[dict[str, str], int, int, Counter[tuple[object, ...]]]:
    with Session(engine) as s:
        states = {m: st for m, st in s.execute(select(MemberProgress.member_id, MemberProgress.state))}
        fired = s.scalar(select(func.count()).select_from(FiredDeadline)) or 0
        evidence = s.scalar(select(func.count()).select_from(Evidence)) or 0
        dup = Counter(
            tuple(r) for r in s.execute(
                select(TransitionLog.member_id, TransitionLog.trigger, TransitionLog.from_state, TransitionLog.to_state)
                .where(TransitionLog.member_id.is_not(None), TransitionLog.from_state != TransitionLog.to_state)
            )
        )
        keys = s.scalar(select(func.count()).select_from(Notice)) or 0
        distinct = s.scalar(select(func.count(func.distinct(Notice.key)))) or 0
    assert keys == distinct
    return states, fired, evidence, dup


def _run_together(url: str, mending: Path) -> list[tuple[int, str]]:
    jobs = [
        ["sweep", KEY, "--at", T],
        ["sweep", KEY, "--at", T],
        ["record", "import", str(mending), "--actor", "M002", "--at", T],
        ["retry", KEY, "--all-stuck", "--actor", "M002", "--reason", "mended", "--at", T],
    ]
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(len(jobs)) as pool:
        return pool.starmap(_cli, [(url, job) for job in jobs])


def test_sweeps_retry_and_import_together_reach_the_clean_result(engine: Engine, tmp_path: Path) -> None:
    load_sample(engine)
    url = engine.url.render_as_string(hide_password=False)
    mending, short = _mending(tmp_path)
    _branches(engine, mending)

    # the clean result: one after another on a database of its own
    clean = make_engine(f"sqlite:///{tmp_path / 'clean.db'}")
    ensure_schema(clean)
    load_sample(clean)
    clean_url = clean.url.render_as_string(hide_password=False)
    for args in (["record", "import", str(mending), "--actor", "M002", "--at", T], ["sweep", KEY, "--at", T]):
        assert _cli(clean_url, args)[0] == 0
    expected = _state(clean)
    assert all(expected[0][m] == "analysis" for m in short)

    results = _run_together(url, mending)
    # Two sweeps of one campaign never run side by side (states.running): one that finds the other running is
    # refused at once (exit 1, one line), and the one that ran did everything.
    sweeps = results[:2]
    assert 0 in [code for code, _ in sweeps], results
    assert all(code == 0 or (code == 1 and "另一次扫描正在进行" in err and "Traceback" not in err) for code, err in sweeps), results
    assert results[2][0] == 0, results
    assert results[3][0] in (0, 1) and "Traceback" not in results[3][1]
    # whatever the order was, one more pass moves whoever a concurrent turn left behind
    assert _cli(url, ["retry", KEY, "--all-stuck", "--actor", "M002", "--reason", "catch up", "--at", T])[0] == 0
    got = _state(engine)
    assert got[0] == expected[0], "member states differ from the sequential run"
    assert got[1] == expected[1] == 2  # start and study fired once
    assert got[2] == expected[2]  # the import whole, once
    assert max(got[3].values()) == 1, [k for k, n in got[3].items() if n > 1][:5]
    assert _cli(url, ["audit", KEY, "--verify"])[0] == 0
    RUNS[engine.dialect.name] = RUNS.get(engine.dialect.name, 0) + 1
    clean.dispose()
