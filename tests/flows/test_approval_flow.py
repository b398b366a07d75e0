"""The approval flow: it suspends for the committee's decision, is resumed with the form's input, and records it.

Suspension needs a deployment and something that starts the run again on resume: a `Runner` serving the
`approval` deployment from a thread, against the session's test server, polling every second.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from flows.approval import ApprovalInput, answer_problem, approval, request_approval
from readers import read_table
from states import appraisal, audit, sample, sweep
from states.models import Appraisal, TransitionLog
from tests.fixtures import SEAL_KEY
from tests.flows.helpers import KEY, at, plan_2024

pytestmark = pytest.mark.prefect

BRANCH = "B01"


@pytest.fixture
def runner(prefect_harness: str) -> Iterator[Any]:
    """The `approval` deployment, served by a Runner on its own event loop in a thread."""
    from prefect.runner import Runner

    runner = Runner(name="approval-test", query_seconds=1, pause_on_shutdown=False)
    ready = threading.Event()
    loop: dict[str, asyncio.AbstractEventLoop] = {}

    async def serve() -> None:
        loop["it"] = asyncio.get_running_loop()
        await runner.aadd_flow(approval, name="approval")
        ready.set()
        await runner.start()

    thread = threading.Thread(target=asyncio.run, args=(serve(),), daemon=True)
    thread.start()
    assert ready.wait(60), "the runner did not start"
    yield runner
    asyncio.run_coroutine_threadsafe(runner.astop(), loop["it"]).result(timeout=30)
    thread.join(timeout=30)


@pytest.fixture
def ballot(campaign_db: Engine, tmp_path: Path) -> int:
    """The 2024 campaign driven to consolidation, and one branch's member meeting ballot recorded."""
    for when in ("2024-03-25T00:00:01", "2024-05-01T00:00:01", "2024-06-01T00:00:01", "2024-08-01T00:00:01"):
        sweep.sweep(campaign_db, KEY, at(when), seal_key=SEAL_KEY)
    rows = sample.demo_ballots(plan_2024(), sample.roster_path())[BRANCH]
    path = sample.write_csv(tmp_path / "ballot.csv", rows, sample.BALLOT_FIELDS)
    when = at("2024-08-08T10:00")
    with Session(campaign_db, expire_on_commit=False) as session, session.begin():
        result = appraisal.import_ballot(session, KEY, read_table(path), "M004", when)
        audit.seal(session, when, SEAL_KEY)
    assert result.ratings and result.meeting_id is not None
    return result.meeting_id


def wait_for(flow_run_id: UUID, done: Any, timeout: float = 90) -> Any:
    from prefect.client.orchestration import get_client

    deadline = time.monotonic() + timeout
    with get_client(sync_client=True) as client:
        while time.monotonic() < deadline:
            run = client.read_flow_run(flow_run_id)
            if done(run.state):
                return run
            time.sleep(0.25)
    raise AssertionError(f"flow run {flow_run_id} is still {run.state!r}")


def test_approval_suspends_resumes_with_the_form_and_records_the_decision(
    runner: Any, campaign_db: Engine, ballot: int
) -> None:
    from prefect.flow_runs import resume_flow_run

    started = request_approval(KEY, BRANCH, ballot)
    assert request_approval(KEY, BRANCH, ballot).id == started.id  # one run per ballot: the idempotency key
    assert started.idempotency_key == f"{KEY}:ballot:{ballot}"

    suspended = wait_for(started.id, lambda s: s.is_paused() or s.is_final())
    assert suspended.state.name == "Suspended", suspended.state
    with Session(campaign_db) as session:  # nothing recorded before the decision
        assert session.scalar(select(Appraisal).where(Appraisal.approved_at.is_not(None))) is None

    # A plain member's answer is not recorded: the run (replayed from the top) suspends again and asks anew.
    resume_flow_run(started.id, run_input={"decision": "approve", "decided_by": "M010"})
    asked_again = wait_for(started.id, lambda s: (s.is_paused() and s.id != suspended.state.id) or s.is_final())
    assert asked_again.state.name == "Suspended", asked_again.state
    with Session(campaign_db) as session:
        assert session.scalar(select(Appraisal).where(Appraisal.approved_at.is_not(None))) is None

    resume_flow_run(started.id, run_input={"decision": "approve", "comment": "as balloted", "decided_by": "M002"})
    finished = wait_for(started.id, lambda s: s.is_final())
    assert finished.state.is_completed(), finished.state

    with Session(campaign_db) as session:
        pending, _ = appraisal.pending_approval(session, KEY, BRANCH)
        assert pending == []
        approved = session.scalars(select(Appraisal).where(Appraisal.approved_at.is_not(None))).all()
        assert approved and {a.approved_by for a in approved} == {"M002"}
        logged = session.scalars(select(TransitionLog).where(TransitionLog.cause == "approval")).all()
    assert {(e.actor, e.reason, e.flow_run_id) for e in logged} == {
        ("M002", "as balloted (via prefect-ui)", str(started.id))
    }
    with Session(campaign_db, expire_on_commit=False) as session, session.begin():  # the CLI, second, finds nothing
        late = appraisal.approve(session, KEY, BRANCH, "M001", at("2024-08-09T10:00"))
    assert (late.approved, late.rejected, late.withdrawn) == ([], [], [])


@pytest.mark.parametrize(
    ("answer", "problem"),
    [
        (ApprovalInput(decision="approve", decided_by="M002"), None),
        (ApprovalInput(decision="reject", decided_by="M002"), "a rejection needs a comment (the branch reviews again)"),
        (ApprovalInput(decision="approve", decided_by="M010"), "only the upper committee may approve; M010 is member"),
        (ApprovalInput(decision="approve", decided_by="X9"), "--actor 'X9' is not a person of the roster"),
    ],
)
def test_an_answer_the_rules_refuse_is_asked_again(campaign_db: Engine, answer: ApprovalInput, problem: str | None) -> None:
    assert answer_problem(KEY, answer) == problem
