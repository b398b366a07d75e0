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
    sweep.sweep(planned, KEY, deadlines[0].due_at + dt.timedelta(seconds=1))  # the start has fired: no run for it
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
