"""Conditions: each at its boundary, and the chunk evaluation = the single evaluation = a plain-Python oracle."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, delete, insert, update
from sqlalchemy.orm import Session

from states import counts, facts
from states import member as member_machine
from states.conditions import Row
from states.db import ensure_schema, make_engine
from states.evaluate import context, evaluate_member, in_branches, member_rows, of_members, passes
from states.models import BranchProgress, Evidence, MemberProgress
from tests.fixtures import KEY, at, load_sample

STUDY_END = dt.date(2024, 4, 30)
DEADLINE = at("2024-05-01T00:00")
MEMBERS = ["M005", "M006", "M007", "M008", "M009", "M010"]  # all in branch B01


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    engine = make_engine(f"sqlite:///{tmp_path_factory.mktemp('cond') / 'c.db'}")
    ensure_schema(engine)
    load_sample(engine, records=False)
    with Session(engine) as s, s.begin():
        s.execute(update(MemberProgress).values(state="study"))
        s.execute(update(BranchProgress).values(state="analysis"))
    yield engine
    engine.dispose()


def put(engine: Engine, rows: list[dict]) -> None:
    with Session(engine) as s, s.begin():
        s.execute(delete(Evidence))
        if rows:
            s.execute(insert(Evidence), [{"value": "", "num": None, **r} for r in rows])
        facts.repair(s)  # rows written past the import: their facts recomputed as the import would keep them


def study_unmet(engine: Engine, member_id: str, cutoff: dt.date = STUDY_END) -> dict[str, tuple]:
    edge = member_machine.advance_edge("study")
    with Session(engine) as s:
        ctx = context(s, KEY, DEADLINE, cutoff=cutoff)
        return {r.condition: (r.have, r.need) for r in evaluate_member(s, ctx, member_id, edge) if not r.ok}


def sitting(member: str, kind: str, day: str, hours: float) -> dict:
    return {"member_id": member, "branch_id": "B01", "kind": kind, "date": dt.date.fromisoformat(day), "num": hours, "value": str(hours)}


def check(member: str, day: str, value: str) -> dict:
    return {"member_id": member, "branch_id": "B01", "kind": "study_check", "date": dt.date.fromisoformat(day), "value": value}


def test_study_hours_boundary(db: Engine) -> None:
    base = [sitting("M005", "study_concentrated", f"2024-04-0{d}", 8) for d in (1, 2, 3)] + [check("M005", "2024-04-20", "pass")]
    put(db, [*base, sitting("M005", "study_self", "2024-04-10", 25.5)])  # 49.5 hours
    assert study_unmet(db, "M005") == {"study_hours": (49.5, 50)}
    put(db, [*base, sitting("M005", "study_self", "2024-04-10", 26)])  # 50 hours
    assert study_unmet(db, "M005") == {}


def test_concentrated_days_are_distinct_days(db: Engine) -> None:
    rows = [
        sitting("M005", "study_concentrated", "2024-04-01", 10),
        sitting("M005", "study_concentrated", "2024-04-01", 10),  # two sittings, one day
        sitting("M005", "study_concentrated", "2024-04-02", 10),
        sitting("M005", "study_self", "2024-04-10", 20),
        check("M005", "2024-04-20", "pass"),
    ]
    put(db, rows)
    assert study_unmet(db, "M005") == {"concentrated_days": (2, 3)}
    put(db, [*rows, sitting("M005", "study_concentrated", "2024-04-03", 1)])
    assert study_unmet(db, "M005") == {}


def test_latest_study_check_decides_and_last_imported_on_one_day(db: Engine) -> None:
    hours = [sitting("M005", "study_concentrated", f"2024-04-0{d}", 20) for d in (1, 2, 3)]
    put(db, [*hours, check("M005", "2024-04-25", "pass"), check("M005", "2024-04-20", "fail")])
    assert study_unmet(db, "M005") == {}
    put(db, [*hours, check("M005", "2024-04-25", "pass"), check("M005", "2024-04-25", "fail")])
    assert study_unmet(db, "M005") == {"study_check": ("fail", "pass")}


def test_evidence_after_the_cutoff_or_outside_the_campaign_counts_for_nothing(db: Engine) -> None:
    rows = [
        sitting("M005", "study_concentrated", "2024-04-01", 20),
        sitting("M005", "study_concentrated", "2024-04-02", 20),
        sitting("M005", "study_concentrated", "2024-05-01", 20),  # after the study deadline's cut-off
        sitting("M005", "study_self", "2023-12-01", 50),  # before the campaign
        check("M005", "2024-04-20", "pass"),
    ]
    put(db, rows)
    assert study_unmet(db, "M005") == {"study_hours": (40, 50), "concentrated_days": (2, 3)}
    # a later stuck pass at 2024-05-01 counts the sitting of that day
    assert study_unmet(db, "M005", cutoff=dt.date(2024, 5, 1)) == {}


# -- the property: chunk = single = oracle ---------------------------------------------------------------------

DAYS = [dt.date(2024, 3, 20), dt.date(2024, 3, 25), dt.date(2024, 4, 1), dt.date(2024, 4, 2), dt.date(2024, 4, 30), dt.date(2024, 5, 1)]
HOURS = [0.5, 1, 2.5, 4, 8, 12, 24]

evidence_rows = st.lists(
    st.one_of(
        st.builds(
            lambda m, k, d, h: {"member_id": m, "branch_id": "B01", "kind": k, "date": d, "num": h, "value": str(h)},
            st.sampled_from(MEMBERS), st.sampled_from(["study_self", "study_concentrated"]), st.sampled_from(DAYS), st.sampled_from(HOURS),
        ),
        st.builds(
            lambda m, d, v: {"member_id": m, "branch_id": "B01", "kind": "study_check", "date": d, "num": None, "value": v},
            st.sampled_from(MEMBERS), st.sampled_from(DAYS), st.sampled_from(["pass", "fail"]),
        ),
    ),
    max_size=40,
)


def oracle(rows: list[dict], member_id: str, start: dt.date, cutoff: dt.date) -> bool:
    """The campaign's rule, read plainly: ≥ 50 hours, concentrated on ≥ 3 distinct days, the latest check passed."""
    mine = [r for r in rows if r["member_id"] == member_id and start <= r["date"] <= cutoff]
    hours = sum(r["num"] for r in mine if r["kind"] in ("study_self", "study_concentrated"))
    days = {r["date"] for r in mine if r["kind"] == "study_concentrated"}
    checks = [(r["date"], i, r["value"]) for i, r in enumerate(mine) if r["kind"] == "study_check"]
    latest = max(checks)[2] if checks else None
    return hours >= 50 and len(days) >= 3 and latest == "pass"


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=evidence_rows, cutoff=st.sampled_from([STUDY_END, dt.date(2024, 5, 1)]))
def test_chunk_and_single_evaluation_agree_with_the_oracle(db: Engine, rows: list[dict], cutoff: dt.date) -> None:
    put(db, rows)
    edge = member_machine.advance_edge("study")
    with Session(db) as s:
        ctx = context(s, KEY, DEADLINE, cutoff=cutoff)
        row = Row()
        chunk = set(
            s.scalars(
                member_rows(row, ctx, edge.guards, of_members(MEMBERS))
                .add_columns(row.mp.member_id)
                .where(passes("member", edge, ctx, row))
            )
        )
        single = {m for m in MEMBERS if all(r.ok for r in evaluate_member(s, ctx, m, edge))}
    expected = {m for m in MEMBERS if oracle(rows, m, dt.date(2024, 3, 25), cutoff)}
    assert chunk == single == expected


def test_schema_revision_constant_is_alembics_head() -> None:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from states.db import MIGRATIONS, SCHEMA_REVISION

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    assert ScriptDirectory.from_config(config).get_heads() == [SCHEMA_REVISION]




def test_tallies_agree_on_both_dialects_in_a_chunk_and_alone(engine: Engine) -> None:
    """The tallies' SQL (sum, distinct days, the latest check by date then import order, whatever the id's width or
    the database's collation) gives the same figures on SQLite and PostgreSQL, for a branch chunk and one member."""
    load_sample(engine, records=False)
    with Session(engine) as s, s.begin():
        s.execute(update(MemberProgress).values(state="study"))
        s.execute(update(BranchProgress).values(state="analysis"))
        counts.recount(s, KEY)  # the states set by hand, past the movers that keep the counts
    fillers = [check("M009", "2024-04-01", "fail") for _ in range(8)]
    rows = [
        *fillers,
        check("M005", "2024-04-25", "pass"),  # id 9
        check("M005", "2024-04-25", "fail"),  # id 10, imported last on the latest date: it decides ("9" > "10" as text)
        sitting("M005", "study_concentrated", "2024-04-01", 8.5),
        sitting("M005", "study_concentrated", "2024-04-01", 8),  # the same day twice: one day
        sitting("M005", "study_concentrated", "2024-04-02", 8),
        sitting("M005", "study_self", "2024-04-10", 30),
        check("M006", "2024-04-26", "pass"),
        check("M006", "2024-04-25", "fail"),  # an earlier date, imported later: it does not decide
        *[sitting("M007", "study_concentrated", f"2024-04-0{d}", 8) for d in (1, 2, 3)],
        sitting("M007", "study_self", "2024-04-11", 26),
        check("M007", "2024-04-20", "pass"),
    ]
    put(engine, rows)
    edge = member_machine.advance_edge("study")
    assert edge is not None
    with Session(engine) as s:
        ctx = context(s, KEY, DEADLINE, cutoff=STUDY_END)
        alone = {m: {r.condition: (r.have, r.ok) for r in evaluate_member(s, ctx, m, edge)} for m in ("M005", "M006")}
        row = Row()
        chunk = set(
            s.scalars(
                member_rows(row, ctx, edge.guards, in_branches("B01", "B01"), "study")
                .add_columns(row.mp.member_id)
                .where(passes("member", edge, ctx, row))
            )
        )
    assert alone["M005"]["study_hours"] == (54.5, True)
    assert alone["M005"]["concentrated_days"] == (2, False)
    assert alone["M005"]["study_check"] == ("fail", False)
    assert alone["M006"]["study_check"] == ("pass", True)
    assert alone["M006"]["study_hours"] == (0, False)
    assert chunk == {"M007"}
