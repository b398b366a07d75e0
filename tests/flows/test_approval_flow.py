"""The approval flow: it suspends for the committee's decision, is resumed with the form's input, and records it —
only with the deciding leader's one-time code, which reaches that leader alone, in their own notice.

Suspension needs a deployment and something that starts the run again on resume: a `Runner` serving the
`approval` deployment from a thread, against the session's test server, polling every second. The resumes are
plain HTTP calls to the API, as an attacker's `curl` would make them.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import json
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from flows import runtime
from flows.approval import ApprovalInput, answer_problem, approval, record_decision, request_approval
from notices.dispatch import dispatch
from readers import read_table
from states import appraisal, audit, sample, sweep
from states.authority import LEADERS
from states.models import Appraisal, CodeUse, Notice, Person, TransitionLog
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


def delivered_codes(outbox: Path) -> dict[str, dict[str, str]]:
    """Each leader's codes as their approval_requested message shows them: recipient address → decision → code."""
    found: dict[str, dict[str, str]] = {}
    for path in outbox.rglob("*.eml"):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        if message["X-Campaign-Event"] != "approval_requested":
            continue
        text = message.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
        found[message["To"].addresses[0].addr_spec] = dict(re.findall(r"(approve|reject)\S*[:：] ?([0-9]{8})", text))
    return found


def resume(flow_run_id: UUID, run_input: dict[str, str]) -> httpx.Response:
    """What `curl -X POST …/flow_runs/<id>/resume` sends: no Prefect client, no UI."""
    from prefect.settings import PREFECT_API_URL

    for _ in range(10):  # the test server's own SQLite is busy at times: 503, as Prefect's client would retry
        answer = httpx.post(f"{PREFECT_API_URL.value()}/flow_runs/{flow_run_id}/resume", json={"run_input": run_input})
        if answer.status_code != 503:
            break
        time.sleep(1)
    return answer


def approved_rows(db: Engine) -> list[Appraisal]:
    with Session(db) as session:
        return list(session.scalars(select(Appraisal).where(Appraisal.approved_at.is_not(None))))


def test_approval_records_the_decision_only_with_the_leader_s_own_code_once(
    runner: Any, campaign_db: Engine, ballot: int, tmp_path: Path
) -> None:
    settings = runtime.settings()
    assert dispatch(campaign_db, settings).failed == 0
    with Session(campaign_db) as session:
        leaders = {p.email: p.member_id for p in session.scalars(select(Person).where(Person.role.in_(LEADERS)))}
        stored = [n.context for n in session.scalars(select(Notice).where(Notice.event == "approval_requested"))]
    delivered = delivered_codes(settings.outbox_dir)
    assert set(delivered) == set(leaders) and all(set(c) == {"approve", "reject"} for c in delivered.values())
    code = {leaders[address]: codes for address, codes in delivered.items()}
    assert len({c for codes in code.values() for c in codes.values()}) == 6  # each leader's own, per decision
    assert not any(c in json.dumps(stored) for codes in code.values() for c in codes.values())  # never stored

    started = request_approval(KEY, BRANCH, ballot)
    assert request_approval(KEY, BRANCH, ballot).id == started.id  # one run per ballot: the idempotency key
    assert started.idempotency_key == f"{KEY}:ballot:{ballot}"
    state = wait_for(started.id, lambda s: s.is_paused() or s.is_final()).state
    assert state.name == "Suspended", state

    # The secretary's name without a code, with another leader's code, with the code of the other decision, with
    # a made-up one: each answer is asked again; nothing is recorded.
    for run_input in (
        {"decision": "approve", "decided_by": "M002"},
        {"decision": "approve", "decided_by": "M002", "code": code["M001"]["approve"]},
        {"decision": "approve", "decided_by": "M002", "code": code["M002"]["reject"]},
        {"decision": "approve", "decided_by": "M002", "code": "12345678"},
    ):
        assert resume(started.id, run_input).status_code in (200, 201)
        previous = state.id
        state = wait_for(started.id, lambda s, previous=previous: (s.is_paused() and s.id != previous) or s.is_final()).state
        assert state.name == "Suspended", state
        assert approved_rows(campaign_db) == []
    with Session(campaign_db) as session:  # three wrong tries counted (the first had no code to try)
        assert session.scalar(select(func.count()).select_from(CodeUse).where(CodeUse.outcome == "wrong")) == 3

    right = {"decision": "approve", "comment": "as balloted", "decided_by": "M002", "code": code["M002"]["approve"]}
    assert resume(started.id, right).status_code in (200, 201)
    finished = wait_for(started.id, lambda s: s.is_final())
    assert finished.state.is_completed(), finished.state
    approved = approved_rows(campaign_db)
    assert approved and {a.approved_by for a in approved} == {"M002"}
    with Session(campaign_db) as session:
        pending, _ = appraisal.pending_approval(session, KEY, BRANCH)
        assert pending == []
        logged = session.scalars(select(TransitionLog).where(TransitionLog.cause == "approval")).all()
    assert {(e.actor, e.reason, e.flow_run_id) for e in logged} == {
        ("M002", "as balloted (via prefect-ui, code verified)", str(started.id))
    }

    # The same code again, straight at the step that records (as a second run would): refused, nothing changes.
    replay = record_decision.fn(
        KEY, BRANCH, str(ballot), "approve", "M002", "again", code["M002"]["approve"], at("2024-08-09T10:00"), None,
        "replay",
    )
    assert replay == {"code_refused": "M002 办理此项决定的一次性验证码已经用过"}
    with Session(campaign_db) as session:
        assert session.scalar(select(func.count()).select_from(TransitionLog).where(TransitionLog.cause == "approval")) == len(logged)

    # Prefect serves back no code: not in the parameters, not in the logs, and the submitted forms are deleted.
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId
    from prefect.input import read_flow_run_input

    with get_client(sync_client=True) as client:
        run = client.read_flow_run(started.id)
        logs = client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[started.id])))
    exposed = " ".join([json.dumps(run.parameters), run.state.message or "", *(log.message for log in logs)])
    assert logs and not any(c in exposed for codes in code.values() for c in codes.values())
    for ask in range(5):
        assert read_flow_run_input(f"suspended-decision-{ask}-response", flow_run_id=started.id) is None

    with Session(campaign_db, expire_on_commit=False) as session, session.begin():  # the CLI, second, finds nothing
        late = appraisal.approve(session, KEY, BRANCH, "M001", at("2024-08-09T10:00"))
    assert (late.approved, late.rejected, late.withdrawn) == ([], [], [])


@pytest.mark.parametrize(
    ("answer", "problem"),
    [
        (ApprovalInput(decision="approve", decided_by="M002", code="12345678"), None),
        (ApprovalInput(decision="approve", decided_by="M002", code=" - "),
         "M002's one-time code is required (in their approval_requested notice)"),
        (ApprovalInput(decision="reject", decided_by="M002"), "a rejection needs a comment (the branch reviews again)"),
        (ApprovalInput(decision="approve", decided_by="M010"), "only the upper committee may approve; M010 is member"),
        (ApprovalInput(decision="approve", decided_by="X9"), "--actor 'X9' is not a person of the roster"),
    ],
)
def test_an_answer_the_rules_refuse_is_asked_again(campaign_db: Engine, answer: ApprovalInput, problem: str | None) -> None:
    assert answer_problem(KEY, answer) == problem
