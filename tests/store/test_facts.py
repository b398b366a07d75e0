"""Facts kept at import: after any sequence of imports (corrections included) they equal facts recomputed from the
evidence, reading them equals aggregating the evidence at every cut-off, and chunk = single = oracle still holds."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, delete, func, select, update
from sqlalchemy.orm import Session

from states import facts
from states import member as member_machine
from states.conditions import Row, Window, windows
from states.db import ensure_schema, make_engine
from states.evaluate import context, evaluate_member, member_rows, of_members, passes
from states.models import BranchFact, BranchProgress, Evidence, ImportRecord, MemberFact, MemberProgress
from states.records import import_records
from states.source import Source
from tests.fixtures import KEY, at, load_sample

MEMBERS = ["M005", "M006", "M007", "M008"]  # all in branch B01
# A long study phase (two windows), a gap after analysis (a window of its own), then the rest of the 2024 plan.
PHASES = [
    ("study", "2024-01-25", "2024-04-30"),
    ("analysis", "2024-05-01", "2024-05-20"),
    ("rectification", "2024-06-01", "2024-07-31"),
    ("consolidation", "2024-08-01", "2024-08-15"),
    ("pledge", "2024-08-16", "2024-08-31"),
]
START = dt.date(2024, 1, 25)
DAYS = [dt.date.fromisoformat(d) for d in (
    "2024-01-20", "2024-01-25", "2024-03-26", "2024-03-27", "2024-04-01", "2024-04-02", "2024-04-30", "2024-05-01",
    "2024-05-25", "2024-06-02",
)]
CUTOFFS = [dt.date.fromisoformat(d) for d in (
    "2024-01-24", "2024-03-26", "2024-04-01", "2024-04-30", "2024-05-01", "2024-05-25", "2024-06-01", "2024-09-30",
)]
HEADER = ["member_id", "branch_id", "kind", "date", "value", "ref"]


def test_windows_cover_the_campaign_in_slices_that_fit_a_day_mask() -> None:
    d = dt.date.fromisoformat
    found = windows([(d("2024-01-01"), d("2024-05-01")), (d("2024-05-10"), d("2024-05-20"))])
    assert found == (
        Window(0, d("2024-01-01"), d("2024-03-02")),  # 62 days
        Window(1, d("2024-03-03"), d("2024-05-01")),
        Window(2, d("2024-05-02"), d("2024-05-09")),  # the gap between the phases
        Window(3, d("2024-05-10"), d("2024-05-20")),
    )
    assert all((w.hi - w.lo).days < 62 for w in found)


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    import yaml

    from tests.fixtures import plan_2024_path

    plan = yaml.safe_load(plan_2024_path().read_text(encoding="utf-8"))
    plan["phases"] = [{"name": n, "start": dt.date.fromisoformat(s), "end": dt.date.fromisoformat(e)} for n, s, e in PHASES]
    engine = make_engine(f"sqlite:///{tmp_path_factory.mktemp('facts') / 'f.db'}")
    ensure_schema(engine)
    load_sample(engine, records=False, plan=plan)
    with Session(engine) as s, s.begin():
        s.execute(update(MemberProgress).values(state="study"))
        s.execute(update(BranchProgress).values(state="analysis"))
    yield engine
    engine.dispose()


def source(name: str, rows: list[list[str]]) -> Source:
    digest = hashlib.sha256(repr((name, rows)).encode()).hexdigest()
    return Source(path=name, sha256=digest, header=HEADER, data=[(i + 2, list(r)) for i, r in enumerate(rows)])


member_row = st.one_of(
    st.tuples(st.sampled_from(MEMBERS), st.sampled_from(["study_self", "study_concentrated"]), st.sampled_from(DAYS),
              st.sampled_from(["0.5", "2.5", "8", "12", "24"])),
    st.tuples(st.sampled_from(MEMBERS), st.just("study_check"), st.sampled_from(DAYS), st.sampled_from(["pass", "fail"])),
    st.tuples(st.sampled_from(MEMBERS), st.just("heart_talk"), st.sampled_from(DAYS), st.just("")),
    st.tuples(st.just(""), st.just("concentrated_training"), st.sampled_from(DAYS), st.just("")),
    st.tuples(st.just(""), st.just("opinions_solicited"), st.sampled_from(DAYS), st.sampled_from(["1", "3"])),
)
batch = st.lists(st.tuples(member_row, st.one_of(st.none(), st.sampled_from(["r1", "r2", "r3", "r4", "r5"]))), max_size=12)


def rows_of(drawn: list[tuple[tuple[str, str, dt.date, str], str | None]]) -> list[list[str]]:
    """A batch as CSV rows; a ref repeated within one batch is dropped (a file may not repeat one)."""
    seen: set[str] = set()
    rows = []
    for (member, kind, day, value), ref in drawn:
        if ref in seen:
            ref = None
        if ref:
            seen.add(ref)
        rows.append([member, "B01", kind, day.isoformat(), value, ref or ""])
    return rows


def oracle(rows: list[Evidence], member_id: str, cutoff: dt.date) -> bool:
    """The domain rules, read plainly: ≥ 50 hours, concentrated on ≥ 3 distinct days, the latest check passed."""
    mine = [r for r in rows if r.member_id == member_id and START <= r.date <= min(cutoff, dt.date(2024, 8, 31))]
    hours = sum(r.num or 0 for r in mine if r.kind in ("study_self", "study_concentrated"))
    days = {r.date for r in mine if r.kind == "study_concentrated"}
    checks = [(r.date, r.id, r.value) for r in mine if r.kind == "study_check"]
    latest = max(checks)[2] if checks else None
    return hours >= 50 and len(days) >= 3 and latest == "pass"


def raw_tallies(s: Session, ctx, scope) -> dict:
    """Every tally of `scope` aggregated straight from the evidence up to the cut-off (the definition before facts)."""
    wanted = facts.kept(scope)
    subject = Evidence.member_id if scope == "member" else Evidence.branch_id
    query = (
        select(subject, *[t.read(t.aggregate()) for t in wanted])
        .where(Evidence.date.between(ctx.window_start, ctx.last_day),
               Evidence.member_id.is_not(None) if scope == "member" else Evidence.member_id.is_(None))
        .group_by(subject)
    )
    return {r[0]: _plain(r[1:]) for r in s.execute(query)}


def read_tallies(s: Session, ctx, scope) -> dict:
    wanted = facts.kept(scope)
    f = facts.read(ctx, scope, wanted, None)
    return {r[0]: _plain(r[1:]) for r in s.execute(select(f.c.subject, *[t.read(f.c[t.name]) for t in wanted]))}


def _plain(values) -> tuple:
    return tuple(round(v, 6) if isinstance(v, float) else v for v in values)


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batches=st.lists(batch, min_size=1, max_size=4))
def test_facts_after_any_imports_equal_the_evidence_and_decide_as_the_oracle(db: Engine, batches) -> None:
    with Session(db) as s, s.begin():
        for table in (Evidence, ImportRecord, MemberFact, BranchFact):
            s.execute(delete(table))
    for index, drawn in enumerate(batches):
        with Session(db) as s, s.begin():
            import_records(s, source(f"batch-{index}.csv", rows_of(drawn)), "M002", at("2024-03-01T09:00"))
    edge = member_machine.advance_edge("study")
    assert edge is not None
    with Session(db) as s:
        assert facts.differences(s) == []
        evidence = list(s.scalars(select(Evidence).order_by(Evidence.id)))
        for cutoff in CUTOFFS:
            ctx = context(s, KEY, at("2024-09-01T00:00"), cutoff=cutoff)
            for scope in ("member", "branch"):
                assert read_tallies(s, ctx, scope) == raw_tallies(s, ctx, scope), (cutoff, scope)
            row = Row()
            chunk = set(
                s.scalars(
                    member_rows(row, ctx, edge.guards, of_members(MEMBERS), "study")
                    .add_columns(row.mp.member_id)
                    .where(passes("member", edge, ctx, row))
                )
            )
            single = {m for m in MEMBERS if all(r.ok for r in evaluate_member(s, ctx, m, edge))}
            expected = {m for m in MEMBERS if oracle(evidence, m, cutoff)}
            assert chunk == single == expected, cutoff


def test_a_plan_whose_windows_move_has_its_facts_recomputed(sqlite_engine: Engine) -> None:
    import yaml

    from states.plan import Plan, load_plan
    from tests.fixtures import plan_2024_path

    plan = load_sample(sqlite_engine)  # the demo evidence, imported
    with Session(sqlite_engine) as s:
        before = s.scalar(select(func.count()).select_from(MemberFact))
        assert before and facts.differences(s) == []
    moved = yaml.safe_load(plan_2024_path().read_text(encoding="utf-8"))
    moved["phases"][0]["start"] = dt.date(2024, 1, 2)  # a longer study phase: two windows instead of one
    with Session(sqlite_engine) as s, s.begin():
        load_plan(s, Plan.model_validate(moved), "M002", at("2024-03-01T09:00"))
    with Session(sqlite_engine) as s:
        assert facts.differences(s) == []
        assert s.scalar(select(func.max(MemberFact.window_seq))) == len(facts.campaign_windows(s)[KEY]) - 1
    assert plan


def test_the_migration_backfills_facts_from_evidence_already_imported(tmp_path) -> None:  # noqa: ANN001
    from alembic import command
    from alembic.config import Config

    from states.db import MIGRATIONS

    engine = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "20261201_1840")  # the schema before facts
    from sqlalchemy import text

    with engine.begin() as connection:
        connection.execute(text(
            "INSERT INTO campaign (key, title, timezone, study_hours, concentrated_days, publicity_days, excellent_num,"
            " excellent_den, reminders_days_before, escalation_days, plan, loaded_at) VALUES ('c', 't', 'UTC', 50, 3,"
            " 5, 1, 3, '[]', '{}', '{}', '2024-01-01 00:00:00.000000')"
        ))
        for seq, (name, start, end) in enumerate(PHASES):
            connection.execute(text(
                "INSERT INTO phase VALUES ('c', :name, :seq, :start, :end, '2024-01-01 00:00:00.000000',"
                " '2024-01-01 00:00:00.000000')"
            ), {"name": name, "seq": seq, "start": start, "end": end})
        connection.execute(text(
            "INSERT INTO evidence (member_id, branch_id, kind, date, value, num) VALUES"
            " ('M1', 'B1', 'study_self', '2024-02-01', '8', 8), ('M1', 'B1', 'study_self', '2024-04-01', '4', 4),"
            " ('M1', 'B1', 'study_concentrated', '2024-02-01', '8', 8), (NULL, 'B1', 'concentrated_training',"
            " '2024-02-01', '', NULL)"
        ))
    ensure_schema(engine)
    with Session(engine) as s:
        assert facts.differences(s) == []
        got = {(f.member_id, f.window_seq): (f.study_hours, f.concentrated_days) for f in s.scalars(select(MemberFact))}
        assert got == {("M1", 0): (16.0, 1), ("M1", 1): (4.0, 0)}
        assert s.scalar(select(func.count()).select_from(BranchFact)) == 1
    engine.dispose()
