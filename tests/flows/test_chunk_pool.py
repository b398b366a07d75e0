"""Chunks across hosts: with CAMPAIGN_CHUNK_POOL, a deadline's chunk groups run as `sweep-chunks` flow runs on a
process work pool, taken by real `prefect worker start` processes; and the chunk flow takes only planned work."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from bench.workers import children as processes
from flows import chunks
from flows.deadline import phase_deadline, sweep_chunks
from flows.deployments import ROOT
from flows.runtime import write
from states import planned, sweep
from states.models import DoneChunk, Person, TransitionLog
from tests.flows.helpers import KEY, at, campaign_slots_in_use, load_sample, snapshot, use_database
from tests.reliability.synth import run_cli

pytestmark = pytest.mark.prefect

START, STUDY = "2024-03-25T00:00:01", "2024-05-01T00:00:01"


def plan_on(db: Engine, when: str, group_size: int) -> sweep.SweepPlan:
    """What a sweep on the pool records before it starts its groups."""
    with Session(db) as session, session.begin():
        plan = sweep.plan_sweep(session, KEY, at(when), branches_per_chunk=3)
    with write(db, plan.at, anchor=False) as session:
        planned.record(session, plan, group_size, flow_run_id=None)
    return plan


def test_a_group_no_sweep_planned_is_refused_and_changes_nothing(prefect_harness: str, campaign_db: Engine) -> None:
    before = snapshot(campaign_db)
    plan = plan_on(campaign_db, "2024-03-25T00:00:01", group_size=2)  # start: groups 0 and 1
    for sweep_id, deadline, group in [
        ("0" * 32, "start", 0),  # no such sweep
        (plan.sweep_id, "study", 0),  # a deadline that sweep did not fire
        (plan.sweep_id, "start", 2),  # a group beyond its plan
    ]:
        state = sweep_chunks(KEY, sweep_id, deadline, group, return_state=True)
        assert state.is_failed()
        assert state.message.startswith(f"campaign: 扫描 {sweep_id!r} 中没有为活动 {KEY!r} 截止 {deadline!r} 规划的第 {group} 组")
    assert snapshot(campaign_db) == before


def test_a_planned_group_fires_its_chunks_as_the_system_at_the_sweep_s_time_and_twice_is_harmless(
    prefect_harness: str, campaign_db: Engine
) -> None:
    plan = plan_on(campaign_db, "2024-03-25T00:00:01", group_size=2)
    assert planned.groups(plan.chunks, 2) == [plan.chunks[:2], plan.chunks[2:]]
    state = sweep_chunks(KEY, plan.sweep_id, "start", 0, return_state=True)
    assert state.is_completed(), state.message
    run_id = str(state.state_details.flow_run_id)
    with Session(campaign_db) as session:
        done = sorted(session.execute(select(DoneChunk.lo, DoneChunk.hi)).all())
        logged = set(
            session.execute(
                select(TransitionLog.actor, TransitionLog.flow_run_id, TransitionLog.sweep_id, TransitionLog.at).where(
                    TransitionLog.cause == "sweep"
                )
            ).all()
        )
        branches = set(
            session.scalars(
                select(Person.branch_id)
                .join(TransitionLog, TransitionLog.member_id == Person.member_id)
                .where(TransitionLog.cause == "sweep")
            )
        )
        start = sweep.deadlines(session, KEY)[0]
        left = planned.undone(session, plan, start)
    assert done == plan.chunks[:2] and left == plan.chunks[2:]  # group 1 is still to do
    # the moves are the system's, with the chunk run's id, in the planning sweep, dated by the deadline
    assert logged == {("system", run_id, plan.sweep_id, start.due_at)}
    assert branches == {f"B0{i}" for i in range(1, 10) if plan.chunks[0][0] <= f"B0{i}" <= plan.chunks[1][1]}

    after_once = snapshot(campaign_db)
    again = sweep_chunks(KEY, plan.sweep_id, "start", 0, return_state=True)
    assert again.is_completed(), again.message
    assert snapshot(campaign_db) == after_once


def test_the_pool_setting_on_sqlite_fails_the_sweep_with_one_line(
    prefect_harness: str, campaign_db: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CAMPAIGN_CHUNK_POOL", "campaign-chunks")
    before = snapshot(campaign_db)
    state = phase_deadline(KEY, at=STUDY, return_state=True)
    assert state.is_failed()
    assert state.message == "campaign: CAMPAIGN_CHUNK_POOL=campaign-chunks 需要 PostgreSQL：工作池的各个工作进程在其他主机上，共用同一个数据库"
    assert snapshot(campaign_db) == before and campaign_slots_in_use() == 0


@pytest.mark.postgres
@pytest.mark.parametrize("outcome", ["a run failed", "a run completed without its chunks"])
def test_a_group_that_did_not_complete_fails_the_sweep_before_the_deadline_is_recorded(
    prefect_harness: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, outcome: str
) -> None:
    # The pool's side stood in for: no group runs anywhere, and the waiting reports what the case says.
    from tests.fixtures import _postgres_database

    failures = ["sfao-2024 study 1/2: Crashed: the worker's process died"] if outcome == "a run failed" else []
    monkeypatch.setattr(chunks, "check_pool", lambda pool: None)
    monkeypatch.setattr(chunks, "start_groups", lambda *args: [])
    monkeypatch.setattr(chunks, "wait_for_groups", lambda pool, runs, on_end: failures)
    for url in _postgres_database():
        db = use_database(monkeypatch, tmp_path / "pg", url)
        try:
            load_sample(db, tmp_path)
            assert phase_deadline(KEY, at=START, return_state=True).is_completed()
            before = snapshot(db)
            monkeypatch.setenv("CAMPAIGN_CHUNK_POOL", "campaign-chunks")
            state = phase_deadline(KEY, at=STUDY, return_state=True)
            assert state.is_failed()
            why = failures[0] if failures else "chunks not recorded done: B01..B03, B04..B06, B07..B09"
            assert state.message == (
                f"campaign: 截止 'study' 的分块组未全部完成（{why}）；该截止未记为已触发：请重新运行扫描（已完成的分块会跳过）"
            )
            assert snapshot(db) == before and campaign_slots_in_use() == 0
        finally:
            db.dispose()


# -- real workers ------------------------------------------------------------------------------------------------


def _prefect(*args: str) -> list[str]:
    return [str(Path(sys.executable).with_name("prefect")), *args]


def _wait_for_workers(pool: str, names: set[str], children: dict[str, subprocess.Popen[bytes]], logs: Path) -> None:
    from prefect.client.orchestration import get_client

    deadline = time.monotonic() + 120
    with get_client(sync_client=True) as client:
        while time.monotonic() < deadline:
            for name, child in children.items():
                if child.poll() is not None:
                    pytest.fail(f"{name} exited with {child.returncode}: {(logs / f'{name}.log').read_text()[-2000:]}")
            with contextlib.suppress(Exception):
                if {w.name for w in client.read_workers_for_work_pool(pool) if w.status.value == "ONLINE"} >= names:
                    return
            time.sleep(0.5)
    pytest.fail(f"workers {sorted(names)} did not come online on {pool!r}")


def _chunk_runs() -> list[Any]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterName

    with get_client(sync_client=True) as client:
        return client.read_flow_runs(deployment_filter=DeploymentFilter(name=DeploymentFilterName(any_=[chunks.FLOW])))


def _task_runs(flow_run_ids: list[Any]) -> list[Any]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    with get_client(sync_client=True) as client:
        return client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=flow_run_ids)))


@pytest.mark.postgres
@pytest.mark.workers
def test_two_workers_share_a_sweep_s_chunk_groups_and_end_as_one_process_would(
    prefect_harness: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from tests.fixtures import _postgres_database

    pool = f"chunks-{os.getpid()}"
    monkeypatch.setenv("PREFECT_API_URL", prefect_harness)  # for the CLI and the workers, which read the environment
    monkeypatch.setenv("PREFECT_WORKER_QUERY_SECONDS", "1")
    monkeypatch.setattr(chunks, "POLL_SECONDS", 0.5)
    for reference_url in _postgres_database():
        for url in _postgres_database():
            # The workers read CAMPAIGN_* as they start (their flow runs inherit it): the pooled database's.
            db = use_database(monkeypatch, tmp_path / "pool", url)
            subprocess.run(_prefect("work-pool", "create", pool, "--type", "process"), check=True, cwd=ROOT, capture_output=True)
            names = {f"worker-{n}": f"w{n}-{pool}" for n in (1, 2)}
            workers = {key: _prefect("worker", "start", "--pool", pool, "--name", name, "--limit", "1") for key, name in names.items()}
            deploy = {"deploy": _prefect("--no-prompt", "deploy", "--name", chunks.FLOW, "--pool", pool)}
            with processes({**workers, **deploy}, tmp_path) as children:
                # Meanwhile, the same office and evidence twice, the start fired in this process on both; the
                # study deadline then swept once here …
                reference = use_database(monkeypatch, tmp_path / "one", reference_url)
                load_sample(reference, tmp_path / "one")
                assert phase_deadline(KEY, at=START, return_state=True).is_completed()
                single = phase_deadline(KEY, at=STUDY, return_state=True)
                assert single.is_completed(), single.message
                expected = snapshot(reference)
                reference.dispose()
                use_database(monkeypatch, tmp_path / "pool", url)
                load_sample(db, tmp_path / "pool")
                assert phase_deadline(KEY, at=START, return_state=True).is_completed()

                # … and once on the pool: 3 chunks, 2 to a group, so 2 groups, one flow run each
                monkeypatch.setenv("CAMPAIGN_CHUNK_POOL", pool)
                monkeypatch.setenv("CAMPAIGN_CHUNK_GROUP", "2")
                assert children["deploy"].wait(timeout=120) == 0, (tmp_path / "deploy.log").read_text()[-2000:]
                _wait_for_workers(pool, set(names.values()), {k: children[k] for k in workers}, tmp_path)
                state = phase_deadline(KEY, at=STUDY, return_state=True)
                assert state.is_completed(), state.message
                assert state.result()["fired"] == single.result()["fired"] == ["study"]
                assert state.result()["advanced"] == single.result()["advanced"]
                assert snapshot(db) == expected

                runs = _chunk_runs()
                assert len(runs) == 2 and all(r.state.is_completed() for r in runs)
                # both linked under the sweep's run; each taken by one of the workers, and, with one run at a time
                # each (--limit 1) and both groups started together, by different workers
                assert all(r.parent_task_run_id is not None for r in runs)
                took = Counter(r.labels.get("prefect.worker.name") for r in runs)
                assert took == dict.fromkeys(names.values(), 1), took

                # each chunk fired exactly once: one completed task run per chunk across both runs …
                fired = Counter(t.name for t in _task_runs([r.id for r in runs]) if t.state.is_completed())
                with Session(db) as session:
                    cut = sweep.chunks(session, KEY, 3)
                assert dict(fired) == {f"fire study {lo}..{hi}": 1 for lo, hi in cut}
                # … and the database agrees: each branch's members moved by one run, a chunk run, as the system
                with Session(db) as session:
                    movers = set(
                        session.execute(
                            select(Person.branch_id, TransitionLog.flow_run_id, TransitionLog.actor)
                            .join(Person, Person.member_id == TransitionLog.member_id)
                            .where(TransitionLog.to_state == "analysis")
                        ).all()
                    )
                assert len(movers) == len({branch for branch, _, _ in movers})  # one (run, actor) per branch
                assert {run for _, run, _ in movers} == {str(r.id) for r in runs}
                assert {actor for *_, actor in movers} == {"system"}

                # a group run a second time (as a retried run or a stranger's would) changes nothing
                first = runs[0].parameters
                assert sweep_chunks(**first, return_state=True).is_completed()
                assert snapshot(db) == expected
                # and the audit chain holds: the chunk runs sealed on the sweep's lanes, merged at its finish
                checked = run_cli(["audit", KEY, "--verify"])
                assert checked.code == 0 and "pending" not in checked.err, checked.err
            db.dispose()


def test_a_pool_without_the_chunk_deployment_is_refused(prefect_harness: str) -> None:
    # whether or not another test deployed sweep-chunks on a pool of its own, it is not on this one
    with pytest.raises(chunks.PoolUnavailable, match=r"^CAMPAIGN_CHUNK_POOL=no-such-pool but (there is no deployment|deployment)"):
        chunks.check_pool("no-such-pool")
