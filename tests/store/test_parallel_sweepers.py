"""Several processes fire the chunks of one deadline at once on PostgreSQL: no chunk done twice, none lost, every
member's transition logged exactly once. (On 2 cores this shows correctness; speed-ups are extrapolations.)"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, distinct, func, select, text
from sqlalchemy.orm import Session

from bench.parallel import prepare_claims
from bench.run import AT_LOAD, AT_START, AT_STUDY, KEY, SECRETARY, _at, generate, is_short
from readers import read_table
from states import audit
from states.db import ensure_schema, make_engine
from states.engine import Cause
from states.models import AuditLaneMerge, AuditSeal, DoneChunk, MemberProgress, Notice, TransitionLog
from states.plan import load_plan, read_plan
from states.records import import_records
from states.roster import import_roster
from states.sweep import plan_sweep, run_unit, run_units, sweep
from tests.fixtures import SEAL_KEY, _postgres_database

pytestmark = pytest.mark.postgres

MEMBERS = 1500  # 30 branches of 50
PER_CHUNK = 3  # → 10 chunks
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def campaign(tmp_path: Path) -> Iterator[tuple[Engine, str]]:
    """A synthetic campaign on a PostgreSQL database of its own, its start fired, the study deadline due."""
    for url in _postgres_database():
        engine = make_engine(url)
        ensure_schema(engine)
        generate(MEMBERS, tmp_path)
        plan, _ = read_plan(tmp_path / "plan.yaml")
        with Session(engine) as session, session.begin():
            import_roster(session, read_table(tmp_path / "roster.csv"), SECRETARY, _at(AT_LOAD))
            load_plan(session, plan, SECRETARY, _at(AT_LOAD))
            import_records(session, read_table(tmp_path / "records.csv"), SECRETARY, _at(AT_LOAD))
            audit.seal(session, _at(AT_LOAD), SEAL_KEY)
        sweep(engine, KEY, _at(AT_START), seal_key=SEAL_KEY, branches_per_chunk=PER_CHUNK)
        try:
            yield engine, url
        finally:
            engine.dispose()


def _workers(url: str, mode: str, count: int) -> list[list[str]]:
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "bench.parallel", "worker", "--url", url, "--campaign", KEY, "--at", AT_STUDY,
             "--deadline", "study", "--mode", mode, "--worker", str(i), "--branches-per-chunk", str(PER_CHUNK),
             "--pause", "0.05"],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        for i in range(count)
    ]
    done = []
    for proc in procs:
        out, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err
        done.append(json.loads(out.strip().splitlines()[-1])["chunks"])
    return done


def _finish(engine: Engine) -> None:
    """The rest of the sweep, in one process: the deadline recorded as fired, the stuck pass, the time notices."""
    with Session(engine, expire_on_commit=False) as session:
        with session.begin():
            plan = plan_sweep(session, KEY, _at(AT_STUDY), PER_CHUNK)
        cause = Cause(cause="sweep", actor="system", sweep_id=plan.sweep_id)
        units = [("fired", plan.due[0], None), *[("stuck", None, c) for c in plan.chunks], ("finish", None, None)]
        for unit in units:
            with session.begin():
                run_unit(session, plan, unit, cause)  # type: ignore[arg-type]
                audit.seal(session, _at(AT_STUDY), SEAL_KEY)


def _check(engine: Engine, chunks: int) -> None:
    with Session(engine) as session:
        done = session.scalar(
            select(func.count()).select_from(DoneChunk).where(DoneChunk.campaign_key == KEY, DoneChunk.deadline == "study")
        )
        assert done == chunks  # none lost
        moves = session.execute(
            select(TransitionLog.member_id, func.count())
            .where(TransitionLog.campaign_key == KEY, TransitionLog.from_state == "study",
                   TransitionLog.to_state == "analysis", TransitionLog.member_id.is_not(None))
            .group_by(TransitionLog.member_id)
        ).all()
        assert moves and max(n for _m, n in moves) == 1  # each member exactly once
        advanced = session.scalar(
            select(func.count()).select_from(MemberProgress)
            .where(MemberProgress.campaign_key == KEY, MemberProgress.state == "analysis")
        )
        left = session.scalar(
            select(func.count()).select_from(MemberProgress)
            .where(MemberProgress.campaign_key == KEY, MemberProgress.state == "study")
        )
        assert advanced == len(moves)
        short = sum(1 for i in range(MEMBERS) if is_short(i) or i % 50 == 13)
        assert (advanced, left) == (MEMBERS - short, short)  # exactly who a single sweep moves
        started = session.scalar(
            select(func.count()).select_from(Notice).where(Notice.event == "phase_started", Notice.key.like("%:analysis"))
        )
        assert started == advanced
        branch_moves = session.execute(
            select(TransitionLog.branch_id, func.count())
            .where(TransitionLog.campaign_key == KEY, TransitionLog.member_id.is_(None),
                   TransitionLog.from_state == "study")
            .group_by(TransitionLog.branch_id)
        ).all()
        assert len(branch_moves) == MEMBERS // 50 and max(n for _b, n in branch_moves) == 1
        assert audit.verify(session, SEAL_KEY)[1] is None


def test_workers_claiming_chunks_with_skip_locked(campaign: tuple[Engine, str]) -> None:
    engine, url = campaign
    chunks = prepare_claims(engine, KEY, _at(AT_STUDY), "study", PER_CHUNK)
    assert chunks == 10
    done = _workers(url, "claim", 3)
    fired = [c for mine in done for c in mine]
    assert len(fired) == len(set(fired)) == chunks  # each chunk fired by exactly one worker
    assert sum(1 for mine in done if mine) >= 2  # the work was shared
    _finish(engine)
    _check(engine, chunks)


def test_chunk_transactions_seal_without_waiting_on_each_other(campaign: tuple[Engine, str]) -> None:
    """Two chunks of one deadline, each in its own open transaction: both fire and seal before either commits. With
    one lock for every seal the second would wait for the first's commit; a short lock_timeout makes that a failure
    here, not a hang. Then the rest of the sweep; the end state is a single sweep's, and the chain verifies with
    every lane merged."""
    engine, _url = campaign
    with Session(engine, expire_on_commit=False) as session, session.begin():
        plan = plan_sweep(session, KEY, _at(AT_STUDY), PER_CHUNK)
    cause = Cause(cause="sweep", actor="system", sweep_id=plan.sweep_id)
    first, second, *rest = [unit for unit in run_units(plan) if unit[0] == "fire"]
    open_ = [Session(engine), Session(engine)]
    try:
        for session, unit in zip(open_, (first, second), strict=True):
            session.begin()
            session.execute(text("SET LOCAL lock_timeout = '3s'"))
            run_unit(session, plan, unit, cause)
            audit.seal(session, _at(AT_STUDY), SEAL_KEY)
        for session in open_:
            session.commit()
    finally:
        for session in open_:
            session.close()
    with Session(engine) as session:
        lanes = session.scalars(select(AuditSeal.lane).where(AuditSeal.lane.like(f"%/{plan.sweep_id}/%"))).all()
    assert len(lanes) == len(set(lanes)) == 2  # each chunk on a lane of its own
    with Session(engine) as session:
        for unit in [*rest, *[u for u in run_units(plan) if u[0] != "fire"]]:
            with session.begin():
                run_unit(session, plan, unit, cause)
                audit.seal(session, _at(AT_STUDY), SEAL_KEY)
    _check(engine, len(plan.chunks))
    with Session(engine) as session:
        verdict = audit.verify(session, SEAL_KEY)
        merged = session.scalar(select(func.count()).select_from(AuditLaneMerge))
        lanes_now = session.scalar(select(func.count(distinct(AuditSeal.lane))))
    assert verdict.broken is None and verdict.pending == () and merged == lanes_now and merged >= len(plan.chunks)


def test_a_merge_waits_for_a_lane_seal_in_flight_and_takes_it_in(campaign: tuple[Engine, str]) -> None:
    """A stopped sweep (one chunk committed) whose second chunk is sealed but not committed when the next sweep's
    merge starts: the merge waits for that commit and takes both lanes in, so none is left out to be found later as
    written after its sweep's merge."""
    engine, _url = campaign
    with Session(engine, expire_on_commit=False) as session, session.begin():
        plan = plan_sweep(session, KEY, _at(AT_STUDY), PER_CHUNK)
    cause = Cause(cause="sweep", actor="system", sweep_id=plan.sweep_id)
    first, second = [u for u in run_units(plan) if u[0] == "fire"][:2]
    with Session(engine) as session, session.begin():
        run_unit(session, plan, first, cause)
        audit.seal(session, _at(AT_STUDY), SEAL_KEY)
    sealer = Session(engine)
    sealer.begin()
    run_unit(sealer, plan, second, cause)
    audit.seal(sealer, _at(AT_STUDY), SEAL_KEY)
    merged: list[int] = []

    def merge() -> None:
        with Session(engine) as session, session.begin():
            session.execute(text("SET LOCAL lock_timeout = '30s'"))
            merged.append(audit.merge(session, _at(AT_STUDY), SEAL_KEY, KEY))

    merger = threading.Thread(target=merge)
    merger.start()
    merger.join(1.0)
    waited = merger.is_alive()
    sealer.commit()
    sealer.close()
    merger.join(30)
    assert waited and merged == [2]
    with Session(engine) as session:
        verdict = audit.verify(session, SEAL_KEY)
    assert verdict.broken is None and verdict.pending == (), verdict


def test_workers_racing_over_every_chunk(campaign: tuple[Engine, str]) -> None:
    """No claims at all: the done-chunk record and compare-and-set updates alone keep every move single."""
    engine, url = campaign
    with Session(engine) as session, session.begin():
        chunks = len(plan_sweep(session, KEY, _at(AT_STUDY), PER_CHUNK).chunks)
    _workers(url, "race", 2)
    _finish(engine)
    _check(engine, chunks)
