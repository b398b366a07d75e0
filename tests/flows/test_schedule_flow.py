"""schedule_deadlines: one scheduled phase-deadline run per unfired deadline, at its instant, created once."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import yaml
from sqlalchemy import Engine

from flows import runtime
from flows.deadline import phase_deadline
from flows.schedule import DEPLOYMENT, schedule_deadlines
from states import sample, sweep
from tests.fixtures import SEAL_KEY
from tests.flows.helpers import load_sample, use_database

pytestmark = pytest.mark.prefect

KEY = "schedule-test"  # its own key: idempotency keys live in the session's one test server


@pytest.fixture
def planned(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Engine:
    plan_file = tmp_path / "plan.yaml"
    plan_file.write_text(yaml.safe_dump(sample.plan_starting(dt.date(2030, 3, 1), key=KEY)), encoding="utf-8")
    db = use_database(monkeypatch, tmp_path / "db")
    load_sample(db, tmp_path, plan_file=plan_file, records=False)
    return db


def test_one_run_per_unfired_deadline_at_its_instant_and_none_twice(prefect_harness: str, planned: Engine) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId

    phase_deadline.to_deployment(name="phase-deadline").apply()
    with runtime.read(planned) as session:
        deadlines = sweep.deadlines(session, KEY)
    sweep.sweep(planned, KEY, deadlines[0].due_at + dt.timedelta(seconds=1), seal_key=SEAL_KEY)  # the start has fired: no run for it
    assert schedule_deadlines(KEY, planned) == 5
    assert schedule_deadlines(KEY, planned) == 0
    due = {f"{KEY}:{d.name}": d.due_at for d in deadlines[1:]}
    with get_client(sync_client=True) as client:
        deployment = client.read_deployment_by_name(DEPLOYMENT)
        runs = client.read_flow_runs(deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment.id])))
    mine = {r.idempotency_key: r for r in runs if r.idempotency_key and r.idempotency_key.startswith(f"{KEY}:")}
    assert set(mine) == set(due)
    for key, run in mine.items():
        assert run.state.is_scheduled()
        assert run.state.state_details.scheduled_time == due[key]
        assert run.parameters == {"campaign": KEY}


MOVING = "schedule-move"


def waiting_runs(campaign: str) -> dict[str, object]:
    """The campaign's deadline runs of the deployment, by idempotency key."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId

    with get_client(sync_client=True) as client:
        deployment = client.read_deployment_by_name(DEPLOYMENT)
        runs = client.read_flow_runs(deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment.id])))
    return {r.idempotency_key: r for r in runs if r.idempotency_key and r.idempotency_key.startswith(f"{campaign}:")}


def test_a_moved_deadline_moves_its_run_and_a_fired_ones_waiting_run_goes(
    prefect_harness: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from sqlalchemy.orm import Session

    from flows.schedule import sync_deadlines
    from states import audit
    from states.plan import Plan, load_plan
    from tests.flows.helpers import at

    plan = sample.plan_starting(dt.date(2031, 3, 1), key=MOVING)
    plan_file = tmp_path / "plan.yaml"
    plan_file.write_text(yaml.safe_dump(plan), encoding="utf-8")
    db = use_database(monkeypatch, tmp_path / "db")
    load_sample(db, tmp_path, plan_file=plan_file, records=False)
    phase_deadline.to_deployment(name="phase-deadline").apply()
    assert sync_deadlines(MOVING, db).created == 6
    with runtime.read(db) as session:
        old = {d.name: d.due_at for d in sweep.deadlines(session, MOVING)}

    study, analysis = plan["phases"][0], plan["phases"][1]
    study["end"] += dt.timedelta(days=7)
    analysis["start"] += dt.timedelta(days=7)
    with Session(db) as session, session.begin():
        load_plan(session, Plan.model_validate(plan), "M002", at("2031-03-02T09:00"))
        audit.seal(session, at("2031-03-02T09:00"), SEAL_KEY)
    with runtime.read(db) as session:
        new = {d.name: d.due_at for d in sweep.deadlines(session, MOVING)}
    assert new["study"] == old["study"] + dt.timedelta(days=7)
    first = sync_deadlines(MOVING, db)
    assert (first.created, first.moved, first.removed) == (0, 1, 0)  # only the study deadline moved
    runs = waiting_runs(MOVING)
    assert set(runs) == {f"{MOVING}:{name}" for name in new}
    for name, due in new.items():
        run = runs[f"{MOVING}:{name}"]
        assert run.state.is_scheduled(), name  # type: ignore[attr-defined]
        assert run.state.state_details.scheduled_time == due, name  # type: ignore[attr-defined]
        assert run.next_scheduled_start_time == due, name  # type: ignore[attr-defined]
    assert all(r.next_scheduled_start_time != old["study"] for r in runs.values())  # type: ignore[attr-defined]

    sweep.sweep(db, MOVING, new["start"] + dt.timedelta(seconds=1), seal_key=SEAL_KEY)  # the start fires (in simulated time)
    assert sync_deadlines(MOVING, db).removed == 1  # its run, still waiting for the real clock, is gone
    assert set(waiting_runs(MOVING)) == {f"{MOVING}:{name}" for name in new if name != "start"}
    again = sync_deadlines(MOVING, db)
    assert (again.created, again.moved, again.removed) == (0, 0, 0)
