"""`approval`: a recorded ballot waits, suspended, for the upper committee's decision in Prefect's UI.

Why suspension and not pause: `pause_flow_run` keeps the flow's process alive, blocked, and fails the run when its
timeout (one hour by default) runs out — a committee that decides next week would need a process kept for a week.
`suspend_flow_run` ends the process and frees its infrastructure; the run waits, as a state on the server, for
days, and survives restarts of the server and of `make run`. When someone submits the resume form, the
deployment's runner starts the flow again *from the top*: so nothing with a side effect comes before the
suspension (only reads), and the decision is recorded after it, through the same `states.appraisal.approve` as
`campaign approve`. Whichever of the two decides second finds nothing pending and changes nothing.

Suspension needs a deployment (something must start the run again): `request_approval` starts one run of the
`approval` deployment per ballot, with the idempotency key `<campaign>:ballot:<meeting_id>`.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NONE
from prefect.client.schemas.objects import FlowRun
from prefect.flow_runs import suspend_flow_run
from prefect.input import RunInput
from prefect.states import Completed, Failed, State
from pydantic import Field

from flows import runtime
from states import appraisal, authority
from states.errors import CampaignError

DEPLOYMENT = "approval/approval"
DEFAULT_TIMEOUT_DAYS = 14
MAX_ASKS = 5  # an unauthorised or incomplete answer asks again, this many times at most


class ApprovalInput(RunInput):
    """The resume form the UI shows: the upper committee's decision on the branch's ballot."""

    decision: Literal["approve", "reject"] = Field(
        default="approve", description="approve the ratings (publicity starts) or reject them (the branch reviews again)"
    )
    comment: str = Field(default="", description="the reason; required to reject")
    decided_by: str = Field(
        description="roster id of who decided: the committee secretary or the party group's secretary or deputy"
    )


def idempotency_key(campaign: str, meeting_id: int | str) -> str:
    return f"{campaign}:ballot:{meeting_id}"


def pending_markdown(campaign: str, branch_id: str) -> tuple[int, str]:
    """What awaits the decision (reads only): the number of items and a description for the resume form."""
    with runtime.read(runtime.engine()) as session:
        ratings, withdrawals = appraisal.pending_approval(session, campaign, branch_id)
        lines = [f"**{campaign} · branch {branch_id}**: the branch member meeting's ballot awaits approval.", ""]
        lines += [f"- {a.member_id}: **{a.rating}**" for a in ratings]
        lines += [f"- {a.member_id}: confirmed withdrawal" for a in withdrawals]
    lines += [
        "",
        "Only the committee secretary and the party group's secretary or deputy may decide; "
        "write your roster id in *decided_by*. A rejection needs a comment.",
    ]
    return len(ratings) + len(withdrawals), "\n".join(lines)


def answer_problem(campaign: str, answer: ApprovalInput) -> str | None:
    """Why an answer cannot be recorded (reads only), or None."""
    if answer.decision == "reject" and not answer.comment.strip():
        return "a rejection needs a comment (the branch reviews again)"
    try:
        with runtime.read(runtime.engine()) as session:
            authority.leader(session, answer.decided_by.strip(), "approve")
    except CampaignError as exc:
        return str(exc)
    return None


@task(name="record-decision", cache_policy=NONE)
def record_decision(
    campaign: str, branch_id: str, decision: str, decided_by: str, comment: str, at: dt.datetime,
    flow_run_id: str | None,
) -> dict[str, Any]:
    """The decision, recorded as `campaign approve` records it; a refusal comes back as `refused` (one line)."""
    try:
        with runtime.write(runtime.engine(), at) as session:
            result = appraisal.approve(
                session, campaign, branch_id, decided_by, at, reject=decision == "reject", reason=comment,
                source="prefect-ui", flow_run_id=flow_run_id,
            )
    except CampaignError as exc:
        return {"refused": runtime.one_line(exc)}
    return {"approved": result.approved, "rejected": result.rejected, "withdrawn": result.withdrawn}


@flow(
    name="approval",
    flow_run_name="approval-{campaign}-{branch_id}-{meeting_id}",
    description="Wait (suspended) for the upper committee's decision on a branch's ballot, then record it.",
)
def approval(
    campaign: str, branch_id: str, meeting_id: str, timeout_days: int = DEFAULT_TIMEOUT_DAYS, at: str | None = None
) -> dict[str, Any] | State:
    """Suspend until the resume form is submitted, then record the decision (source: prefect-ui).

    Args:
        campaign: the campaign's key
        branch_id: the branch whose ballot awaits approval
        meeting_id: the recorded ballot (the member meeting) that started this run
        timeout_days: how long the run waits for a decision before it fails (the CLI can still decide)
        at: time of the decision, ISO 8601; empty = when the form is submitted
    """
    logger = get_run_logger()
    # Everything above the suspension runs again on resume: reads only.
    try:
        waiting, description = pending_markdown(campaign, branch_id)
    except CampaignError as exc:
        return Failed(message=runtime.one_line(exc))
    if not waiting:
        return Completed(message=f"branch {branch_id}: nothing awaits approval (already decided, or no rating stood)")
    answer: ApprovalInput | None = None
    for ask in range(MAX_ASKS):
        answer = suspend_flow_run(
            wait_for_input=ApprovalInput.with_initial_data(description=description, decision="approve"),
            timeout=timeout_days * 24 * 3600,  # explicit: suspension has no useful default for a committee's days
            key=f"decision-{ask}",
        )
        problem = answer_problem(campaign, answer)
        if problem is None:
            break
        logger.warning("answer %d not recorded: %s — asking again", ask + 1, problem)
        description = f"**Not recorded:** {problem}\n\n{description}"
        answer = None
    if answer is None:
        return Failed(message=f"campaign: no valid decision after {MAX_ASKS} answers")
    try:
        when = runtime.instant(runtime.engine(), campaign, at or None)
    except CampaignError as exc:
        return Failed(message=runtime.one_line(exc))
    result = record_decision(
        campaign, branch_id, answer.decision, answer.decided_by.strip(), answer.comment.strip(), when,
        runtime.flow_run_id(),
    )
    if "refused" in result:
        return Failed(message=result["refused"])
    if not any(result.values()):
        logger.info("branch %s: nothing awaited approval any more (decided elsewhere first)", branch_id)
    else:
        logger.info(
            "branch %s: %s by %s — %d approved, %d rejected, %d withdrawn", branch_id, answer.decision,
            answer.decided_by, len(result["approved"]), len(result["rejected"]), len(result["withdrawn"]),
        )
    return {"decision": answer.decision, "decided_by": answer.decided_by.strip(), "source": "prefect-ui", **result}


def request_approval(campaign: str, branch_id: str, meeting_id: int | str) -> FlowRun:
    """Start the `approval` deployment for a recorded ballot; the same ballot never starts a second run."""
    from prefect.deployments import run_deployment

    return run_deployment(
        DEPLOYMENT,
        parameters={"campaign": campaign, "branch_id": branch_id, "meeting_id": str(meeting_id)},
        idempotency_key=idempotency_key(campaign, meeting_id),
        timeout=0,  # do not wait: the run suspends until the committee decides
        as_subflow=False,
    )
