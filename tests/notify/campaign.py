"""The sample campaign driven step by step in simulated time, with the notices each step queued.

Every step is what a user does (a sweep at T, a roster import, a ballot, an approval) through the `states`
functions the CLI calls; after each sweep the same sweep runs again and must queue nothing (dedupe).
"""

from __future__ import annotations

import datetime as dt
import shutil
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from readers import read_table
from states import appraisal, audit, sample
from states.db import ensure_schema, make_engine
from states.models import BranchProgress, MemberProgress, Notice, Person, TransitionLog
from states.roster import import_roster
from states.sweep import sweep
from tests.fixtures import KEY, SEAL_KEY, at, load_sample

Notice3 = tuple[str, str, str]  # (event, recipient, key)
COMMITTEE = "M002"
NEWCOMER = "M900"
NEWCOMER_BRANCH = "B02"


@dataclass
class Step:
    name: str
    at: dt.datetime
    notices: set[Notice3] = field(default_factory=set)
    states_before: dict[str, str] = field(default_factory=dict)
    states_after: dict[str, str] = field(default_factory=dict)
    branch_states_after: dict[str, str] = field(default_factory=dict)
    repeat: set[Notice3] = field(default_factory=set)
    """What the same step run a second time queued (must be nothing)."""


@dataclass
class Driven:
    engine: Engine
    path: Path
    plan: dict[str, Any]
    records: list[dict[str, str]]
    ballots: dict[str, list[dict[str, str]]]
    shortfalls: dict[str, list[str]]
    people: dict[str, dict[str, Any]]
    steps: dict[str, Step] = field(default_factory=dict)

    def step(self, name: str) -> Step:
        return self.steps[name]

    def counts(self) -> Counter[str]:
        with Session(self.engine) as session:
            return Counter(dict(session.execute(select(Notice.event, func.count()).group_by(Notice.event)).all()))


def notices_after(engine: Engine, last_id: int) -> tuple[set[Notice3], int]:
    with Session(engine) as session:
        rows = session.execute(
            select(Notice.id, Notice.event, Notice.recipient_id, Notice.key).where(Notice.id > last_id)
        ).all()
    return {(e, r, k) for _, e, r, k in rows}, max((i for i, *_ in rows), default=last_id)


def member_states(engine: Engine) -> dict[str, str]:
    with Session(engine) as session:
        return dict(
            session.execute(
                select(MemberProgress.member_id, MemberProgress.state).where(MemberProgress.campaign_key == KEY)
            ).all()
        )


def branch_states(engine: Engine) -> dict[str, str]:
    with Session(engine) as session:
        return dict(
            session.execute(
                select(BranchProgress.branch_id, BranchProgress.state).where(BranchProgress.campaign_key == KEY)
            ).all()
        )


def people(engine: Engine) -> dict[str, dict[str, Any]]:
    with Session(engine) as session:
        return {
            p.member_id: {"branch_id": p.branch_id, "role": p.role, "email": p.email, "locale": p.locale, "name": p.name}
            for p in session.scalars(select(Person))
        }


def moved_at(engine: Engine, when: dt.datetime, source: str) -> set[str]:
    """Members the log shows leaving `source` at exactly `when` (a deadline's firing decides at its due time)."""
    with Session(engine) as session:
        return set(
            session.scalars(
                select(TransitionLog.member_id).where(
                    TransitionLog.campaign_key == KEY,
                    TransitionLog.member_id.is_not(None),
                    TransitionLog.from_state == source,
                    TransitionLog.at == when,
                )
            )
        )


class Driver:
    def __init__(self, engine: Engine, path: Path, records: bool = True) -> None:
        plan = load_sample(engine, records=records)
        self.d = Driven(
            engine, path, plan,
            sample.demo_records(plan, sample.roster_path()) if records else [],
            sample.demo_ballots(plan, sample.roster_path()),
            sample.demo_shortfalls(plan, sample.roster_path()),
            people(engine),
        )
        _, self.last = notices_after(engine, 0)

    def run(self, name: str, when: dt.datetime, action: Callable[[], Any], repeat: bool = True) -> Step:
        step = Step(name, when, states_before=member_states(self.d.engine))
        action()
        step.notices, self.last = notices_after(self.d.engine, self.last)
        step.states_after = member_states(self.d.engine)
        step.branch_states_after = branch_states(self.d.engine)
        if repeat:
            action()
            step.repeat, self.last = notices_after(self.d.engine, self.last)
        self.d.steps[name] = step
        return step

    def sweep(self, name: str, text: str) -> Step:
        when = at(text)
        return self.run(name, when, lambda: sweep(self.d.engine, KEY, when, seal_key=SEAL_KEY))

    def join(self, name: str, text: str, tmp: Path) -> Step:
        when = at(text)
        csv = tmp / "newcomer.csv"
        csv.write_text(
            "member_id,name,branch_id,branch_name,unit,role,email,locale\n"
            f"{NEWCOMER},新来者,{NEWCOMER_BRANCH},亚洲处党支部,省外办,member,m900@sfao.example.cn,zh-CN\n",
            encoding="utf-8",
        )

        def action() -> None:
            with Session(self.d.engine) as session, session.begin():
                import_roster(session, read_table(csv), "M002", when)
                audit.seal(session, when, SEAL_KEY)

        step = self.run(name, when, action)
        self.d.people = people(self.d.engine)
        return step

    def ballot(self, branch_id: str, tmp: Path) -> Step:
        rows = self.d.ballots[branch_id]
        when = at(f"{rows[0]['date']}T15:00")
        path = sample.write_csv(tmp / f"ballot-{branch_id}.csv", rows, sample.BALLOT_FIELDS)
        secretary = next(
            m for m, p in self.d.people.items() if p["branch_id"] == branch_id and p["role"] == "branch_secretary"
        )

        def action() -> None:
            with Session(self.d.engine) as session, session.begin():
                appraisal.import_ballot(session, KEY, read_table(path), secretary, when)
                audit.seal(session, when, SEAL_KEY)

        return self.run(f"ballot {branch_id}", when, action)

    def approve(self, branch_id: str) -> Step:
        rows = self.d.ballots[branch_id]
        when = at(f"{rows[0]['date']}T17:00")

        def action() -> None:
            with Session(self.d.engine) as session, session.begin():
                appraisal.approve(session, KEY, branch_id, COMMITTEE, when)
                audit.seal(session, when, SEAL_KEY)

        return self.run(f"approve {branch_id}", when, action)


def drive_sample(directory: Path) -> Driven:
    """The whole sample campaign, start to after the last deadline, on SQLite in `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "campaign.db"
    engine = make_engine(f"sqlite:///{path}")
    ensure_schema(engine)
    drv = Driver(engine, path)
    drv.sweep("before start", "2024-03-24T23:59:59")
    drv.sweep("start", "2024-03-25T00:00:01")
    drv.sweep("same day", "2024-03-25T18:00")
    drv.sweep("quiet", "2024-04-10T12:00")
    drv.sweep("study -7", "2024-04-24T00:05")
    drv.sweep("study -3", "2024-04-28T00:05")
    drv.sweep("study -1", "2024-04-30T00:05")
    drv.sweep("study last second", "2024-04-30T23:59:59")
    drv.sweep("study deadline", "2024-05-01T00:00:01")
    drv.join("join", "2024-05-02T09:00", directory)
    drv.sweep("mended", "2024-05-06T00:05")
    drv.sweep("analysis -1 only", "2024-05-31T12:00")
    drv.sweep("analysis deadline", "2024-06-01T00:00:01")
    drv.sweep("rectification deadline", "2024-08-01T00:00:01")
    for branch_id in sorted(drv.d.ballots, key=lambda b: (drv.d.ballots[b][0]["date"], b)):
        drv.ballot(branch_id, directory)
        drv.approve(branch_id)
    drv.sweep("in publicity", "2024-08-10T12:00")
    drv.sweep("publicity over", "2024-08-15T12:00")
    drv.sweep("consolidation deadline", "2024-08-16T00:00:01")
    drv.sweep("pledge -1", "2024-08-31T00:05")
    drv.sweep("pledge deadline", "2024-09-01T00:00:01")
    drv.sweep("after", "2024-09-05T00:05")
    engine.dispose()
    return drv.d


def drive_idle(directory: Path) -> Driven:
    """The sample office with no evidence at all: every branch is stuck at the study deadline and stays stuck."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "idle.db"
    engine = make_engine(f"sqlite:///{path}")
    ensure_schema(engine)
    drv = Driver(engine, path, records=False)
    drv.sweep("start", "2024-03-25T00:00:01")
    drv.sweep("study deadline", "2024-05-01T00:00:01")
    drv.sweep("+2 days", "2024-05-02T23:59:59")
    drv.sweep("+3 days", "2024-05-04T00:00:01")
    drv.sweep("+6 days", "2024-05-07T00:00:00")
    drv.sweep("+7 days", "2024-05-08T00:00:01")
    drv.sweep("+14 days", "2024-05-15T00:00:01")
    drv.sweep("+20 days", "2024-05-21T00:00:01")
    engine.dispose()
    return drv.d


def copy_db(source: Path, target_dir: Path) -> Engine:
    target_dir.mkdir(parents=True, exist_ok=True)
    target = target_dir / source.name
    shutil.copy(source, target)
    for suffix in ("-wal", "-shm"):
        extra = Path(str(source) + suffix)
        if extra.exists():
            shutil.copy(extra, Path(str(target) + suffix))
    return make_engine(f"sqlite:///{target}")
