"""The sample campaign as a database, reported on at the study deadline and during the appraisal's publicity."""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import yaml
from sqlalchemy import Engine, event
from sqlalchemy.orm import Session

from readers import read_table
from reports.report import write_report
from states import appraisal, audit, operations, records, roster, sample
from states.db import ensure_schema, make_engine
from states.plan import load_plan, read_plan
from states.sweep import sweep
from tests.fixtures import SEAL_KEY

KEY = "sfao-2024"
TZ = ZoneInfo("Asia/Shanghai")


def _instant(*fields: int) -> dt.datetime:
    # Instants go to the core in UTC, as the CLI passes them (states.clock.parse_instant).
    return dt.datetime(*fields, tzinfo=TZ).astimezone(dt.UTC)


LOADED = _instant(2024, 3, 1, 9, 0)
STUDY_DEADLINE_PASSED = _instant(2024, 5, 1, 12, 0)
"""T of the first report: the study deadline fired at 00:00; the planted shortfalls are not mended yet."""
BALLOT_AT = _instant(2024, 8, 10, 10, 0)
IN_PUBLICITY = _instant(2024, 8, 11, 12, 0)
"""T of the second report: one branch's ratings approved at BALLOT_AT, its five days of publicity running."""
BALLOT_BRANCH = "B03"
COMMITTEE_SECRETARY = "M002"

HOSTILE_MEMBER = "M071"
HOSTILE_NAME = "<script>alert('x')</script>"
FORMULA_MEMBER = "M100"
FORMULA_NAME = '=HYPERLINK("http://evil.example","点我")'
HOSTILE_BRANCH = "B09"
HOSTILE_BRANCH_NAME = '友协第二党支部"><img src=x onerror=alert(2)>'
EXEMPTED = "M010"
HOSTILE_REASON = "<b onmouseover=alert(3)>常驻国外</b>"


@dataclass(frozen=True)
class Built:
    """A built campaign: its engine, the evidence it was given, and the two reports written from it."""

    engine: Engine
    plan: dict[str, Any]
    records: list[dict[str, str]]
    roster: list[dict[str, str]]
    shortfalls: dict[str, list[str]]
    ballot: list[dict[str, str]]
    study_dir: Path
    study_pages: list[Path]
    publicity_dir: Path
    publicity_pages: list[Path]
    statements: list[str]
    """Every SQL statement the reports ran."""


def _hostile_roster(path: Path) -> list[dict[str, str]]:
    """The sample roster with names a report must render inert."""
    with sample.roster_path().open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    for row in rows:
        if row["member_id"] == HOSTILE_MEMBER:
            row["name"] = HOSTILE_NAME
        if row["member_id"] == FORMULA_MEMBER:
            row["name"] = FORMULA_NAME
        if row["branch_id"] == HOSTILE_BRANCH:
            row["branch_name"] = HOSTILE_BRANCH_NAME
    sample.write_csv(path, rows, sample.ROSTER_FIELDS)
    return rows


@contextmanager
def _write(engine: Engine, at: dt.datetime) -> Iterator[Session]:
    """One transaction, sealed in the audit chain as the CLI seals its own."""
    with Session(engine, expire_on_commit=False) as session, session.begin():
        yield session
        audit.seal(session, at, SEAL_KEY)


def build(tmp: Path, engine: Engine | None = None) -> Built:
    """The campaign built in `engine` (default: a new SQLite database in `tmp`), reported on along the way."""
    if engine is None:
        engine = make_engine(f"sqlite:///{tmp / 'campaign.db'}")
        ensure_schema(engine)
    plan = yaml.safe_load(sample.plan_2024_path().read_text(encoding="utf-8"))
    rows = _hostile_roster(tmp / "roster.csv")
    evidence = sample.demo_records(plan, sample.roster_path())
    sample.write_csv(tmp / "records.csv", evidence, sample.RECORD_FIELDS)
    ballot = sample.demo_ballots(plan, sample.roster_path())[BALLOT_BRANCH]
    sample.write_csv(tmp / "ballot.csv", ballot, sample.BALLOT_FIELDS)
    with _write(engine, LOADED) as session:
        roster.import_roster(session, read_table(tmp / "roster.csv"), COMMITTEE_SECRETARY, LOADED)
        loaded, _digest = read_plan(sample.plan_2024_path())
        load_plan(session, loaded, COMMITTEE_SECRETARY, LOADED)
        records.import_records(session, read_table(tmp / "records.csv"), COMMITTEE_SECRETARY, LOADED)
    sweep(engine, KEY, STUDY_DEADLINE_PASSED, seal_key=SEAL_KEY)
    with _write(engine, STUDY_DEADLINE_PASSED) as session:
        operations.exempt(session, KEY, EXEMPTED, COMMITTEE_SECRETARY, HOSTILE_REASON, STUDY_DEADLINE_PASSED)

    statements: list[str] = []

    def spy(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    def report(at: dt.datetime, out: Path) -> list[Path]:
        event.listen(engine, "before_cursor_execute", spy)
        try:
            with Session(engine) as session:
                return write_report(session, KEY, out, at)
        finally:
            event.remove(engine, "before_cursor_execute", spy)

    study_pages = report(STUDY_DEADLINE_PASSED, tmp / "study")
    sweep(engine, KEY, BALLOT_AT, seal_key=SEAL_KEY)
    with _write(engine, BALLOT_AT) as session:
        appraisal.import_ballot(session, KEY, read_table(tmp / "ballot.csv"), COMMITTEE_SECRETARY, BALLOT_AT)
        appraisal.approve(session, KEY, BALLOT_BRANCH, COMMITTEE_SECRETARY, BALLOT_AT)
    publicity_pages = report(IN_PUBLICITY, tmp / "publicity")
    return Built(
        engine=engine,
        plan=plan,
        records=evidence,
        roster=rows,
        shortfalls=sample.demo_shortfalls(plan, sample.roster_path()),
        ballot=ballot,
        study_dir=tmp / "study",
        study_pages=study_pages,
        publicity_dir=tmp / "publicity",
        publicity_pages=publicity_pages,
        statements=statements,
    )
