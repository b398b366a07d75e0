"""The phase-deadline flow: it fires deadlines chunk by chunk, publishes the progress table, and a re-run is safe."""

from __future__ import annotations

import datetime as dt
import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from flows.deadline import phase_deadline
from states import audit, sweep
from states.models import DoneChunk, FiredDeadline, TransitionLog
from tests.flows.helpers import KEY, campaign_slots_in_use, load_sample, member_states, snapshot, use_database
from tests.reliability.synth import run_cli

pytestmark = pytest.mark.prefect


def read_artifacts(key: str | None = None, flow_run_id: Any = None) -> list[Any]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId, ArtifactFilterKey
    from prefect.client.schemas.sorting import ArtifactSort

    artifact_filter = ArtifactFilter(
        key=ArtifactFilterKey(any_=[key]) if key else None,
        flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]) if flow_run_id else None,
    )
    with get_client(sync_client=True) as client:
        return client.read_artifacts(artifact_filter=artifact_filter, sort=ArtifactSort.CREATED_DESC)


def test_the_deadline_flow_advances_members_and_publishes_the_progress_table(
    prefect_harness: str, campaign_db: Engine
) -> None:
    start = phase_deadline(KEY, at="2024-03-25T00:00:01", return_state=True)
    assert start.is_completed(), start.message
    assert start.result()["fired"] == ["start"]
    assert start.result()["advanced"] == {"members": 175, "branches": 9}

    state = phase_deadline(KEY, at="2024-05-01T00:00:01", return_state=True)
    assert state.is_completed(), state.message
    result = state.result()
    assert result["fired"] == ["study"]
    assert result["advanced"]["members"] == 150  # the late branch's members and the planted shortfalls stay
    assert result["stuck"]["members"] == 25
    states = member_states(campaign_db)
    assert sum(1 for s in states.values() if s == "analysis") == 150

    flow_run_id = state.state_details.flow_run_id
    with Session(campaign_db) as session:
        logged = set(
            session.scalars(select(TransitionLog.flow_run_id).where(TransitionLog.cause == "sweep", TransitionLog.to_state == "analysis"))
        )
    assert logged == {str(flow_run_id)}

    table = read_artifacts(f"{KEY}-progress")[0]
    rows = {row["branch"]: row for row in json.loads(table.data)}
    assert sorted(rows) == [f"B0{i}" for i in range(1, 10)]
    lagging = [b for b, row in rows.items() if row["state"] == "study"]
    assert len(lagging) == 1 and rows[lagging[0]]["stuck"] is True
    assert sum(row["stuck_members"] for row in rows.values()) == 25
    assert sum(row.get("analysis", 0) for row in rows.values()) == 150
    assert table.flow_run_id == flow_run_id

    summary = read_artifacts(f"{KEY}-sweep-summary")[0]
    assert "**fired:** study" in summary.data
    progress = [a for a in read_artifacts(flow_run_id=flow_run_id) if a.type == "progress"]
    assert len(progress) == 1 and float(progress[0].data) == 100.0

    # the deadline's run wrote the report afresh, linked it, and published the machines
    index = Path(os.environ["CAMPAIGN_REPORT_DIR"]) / KEY / "index.html"
    assert index.exists() and "B08" in index.read_text(encoding="utf-8")
    assert str(index.resolve()) in table.description
    machines = read_artifacts(f"{KEY}-machines")[0]
    assert "stateDiagram-v2" in machines.data and "withdrawal_pending" in machines.data

    # the chain's head, outside the database twice: appended to the anchor file and published in Prefect
    with Session(campaign_db) as session:
        head = audit.head(session)
    assert head is not None
    anchors_file = Path(os.environ["CAMPAIGN_AUDIT_ANCHORS"])
    assert stat.S_IMODE(anchors_file.stat().st_mode) == 0o600
    assert f"seal={head.seal_id} digest={head.digest}" in anchors_file.read_text().splitlines()[-1]
    published = read_artifacts(f"{KEY}-audit-head")[0]
    assert published.flow_run_id == flow_run_id and head.digest in published.data
    line = next(x for x in published.data.splitlines() if x.endswith(f"digest={head.digest}"))
    (anchors_file.parent / "from-prefect").write_text(line + "\n")
    checked = run_cli(["audit", KEY, "--verify", "--anchor", str(anchors_file.parent / "from-prefect")])
    assert checked.code == 0 and f"最新的在封印 {head.seal_id}（" in checked.out, checked.err

    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:  # one run per campaign: its limit has one slot, free again
        limit = client.read_global_concurrency_limit_by_name(f"campaign-{KEY}")
    assert (limit.limit, limit.active_slots) == (1, 0)


def test_an_unknown_campaign_fails_the_run_with_one_line(prefect_harness: str, campaign_db: Engine) -> None:
    state = phase_deadline("no-such-campaign", return_state=True)
    assert state.is_failed()
    assert state.message == "campaign: 没有活动 'no-such-campaign'"  # in Chinese, as the office reads the UI


@pytest.mark.parametrize("flow_name", ["phase_deadline", "reminders", "retry_stuck"])
def test_outside_simulation_a_flow_refuses_a_time_ahead_of_the_clock(
    prefect_harness: str, campaign_db: Engine, monkeypatch: pytest.MonkeyPatch, flow_name: str
) -> None:
    # A flow parameter is a stranger's input (the UI, the API): stating a time in the future must not fire a deadline
    # early, send the day's reminders ahead or date an operator's act ahead.
    from flows.reminders import reminders
    from flows.retry_flow import retry_stuck

    monkeypatch.setenv("CAMPAIGN_SIMULATION", "0")
    ahead = (dt.datetime.now(dt.UTC) + dt.timedelta(days=3)).isoformat()
    before = snapshot(campaign_db)
    if flow_name == "retry_stuck":
        state = retry_stuck(KEY, actor="M002", reason="early", members=["M054"], at=ahead, return_state=True)
    else:
        state = {"phase_deadline": phase_deadline, "reminders": reminders}[flow_name](KEY, at=ahead, return_state=True)
    assert state.is_failed()
    assert state.message.startswith("campaign: 时间 ") and "CAMPAIGN_SIMULATION" in state.message
    assert snapshot(campaign_db) == before


def test_rerunning_a_crashed_deadline_run_ends_as_a_clean_run_would(
    prefect_harness: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    clean = use_database(monkeypatch, tmp_path / "clean")
    load_sample(clean, tmp_path / "clean")
    for when in ("2024-03-25T00:00:01", "2024-05-01T00:00:01"):
        assert phase_deadline(KEY, at=when, return_state=True).is_completed()
    expected = snapshot(clean)

    crashed = use_database(monkeypatch, tmp_path / "crashed")
    load_sample(crashed, tmp_path / "crashed")
    assert phase_deadline(KEY, at="2024-03-25T00:00:01", return_state=True).is_completed()
    real_run_unit = sweep.run_unit
    calls = {"n": 0}

    def crash_on_the_third_unit(*args: Any, **kwargs: Any) -> None:
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("simulated crash: the worker died mid-sweep")
        real_run_unit(*args, **kwargs)

    monkeypatch.setattr(sweep, "run_unit", crash_on_the_third_unit)
    failed = phase_deadline(KEY, at="2024-05-01T00:00:01", return_state=True)
    assert failed.is_failed()
    with Session(crashed) as session:  # two chunks of the study deadline committed, the deadline not yet fired
        assert session.scalar(select(func.count()).select_from(DoneChunk).where(DoneChunk.deadline == "study")) == 2
        assert session.scalar(select(FiredDeadline.name).where(FiredDeadline.name == "study")) is None
    monkeypatch.setattr(sweep, "run_unit", real_run_unit)

    rerun = phase_deadline(KEY, at="2024-05-01T00:00:01", return_state=True)
    assert rerun.is_completed(), rerun.message
    assert rerun.result()["fired"] == ["study"]
    assert snapshot(crashed) == expected
    again = phase_deadline(KEY, at="2024-05-01T00:00:01", return_state=True)  # and a third run changes nothing
    assert again.result()["fired"] == [] and again.result()["advanced"] == {"members": 0, "branches": 0}
    assert snapshot(crashed) == expected
    assert campaign_slots_in_use() == 0  # the crashed run gave its slot back


@pytest.mark.postgres
def test_on_postgresql_the_chunks_of_a_deadline_run_side_by_side(
    prefect_harness: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from tests.fixtures import _postgres_database

    for url in _postgres_database():  # a database of its own, dropped after; skips where no server answers
        db = use_database(monkeypatch, tmp_path / "pg", url)
        try:
            load_sample(db, tmp_path)
            assert phase_deadline(KEY, at="2024-03-25T00:00:01", return_state=True).is_completed()
            state = phase_deadline(KEY, at="2024-05-01T00:00:01", return_state=True)
            assert state.is_completed(), state.message
            assert state.result()["advanced"]["members"] == 150 and state.result()["stuck"]["members"] == 25
            with Session(db) as session:
                assert session.scalar(
                    select(func.count()).select_from(DoneChunk).where(DoneChunk.deadline == "study")
                ) == 3
        finally:
            db.dispose()


def test_the_flow_refuses_to_sweep_beside_a_command_line_sweep(prefect_harness: str, campaign_db: Engine) -> None:
    """The flows' slot keeps flow runs apart; a `campaign sweep` holds the campaign in the database (states.running),
    and the flow run beside it fails at once with one line, changing nothing, its slot freed."""
    from states import running

    before = snapshot(campaign_db)
    with running.one_sweep(campaign_db, KEY):  # as `campaign sweep` holds it while it runs
        state = phase_deadline(KEY, at="2024-03-25T00:00:01", return_state=True)
    assert state.is_failed()
    assert state.message == f"campaign: 活动 {KEY!r} 的另一次扫描正在进行（命令行或 Prefect 流程）；本次未作任何更改，请待其结束后再运行"
    assert snapshot(campaign_db) == before
    assert campaign_slots_in_use(KEY) == 0
    assert phase_deadline(KEY, at="2024-03-25T00:00:01", return_state=True).is_completed()  # free once it ends
