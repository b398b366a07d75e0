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

The UI's login says only "an operator": the form's `decided_by` is believed only with that leader's one-time code
for this ballot and this decision (`states/codes.py`), which their own `approval_requested` notice carries. The
code is checked and spent in the transaction that records the decision; a wrong one counts towards the leader's
lockout and the form is asked again; nothing is recorded without it. The code never enters a parameter, a log or
an artifact; Prefect keeps the submitted form as the run's input, which the run deletes when it ends (a spent
code is worthless anyway).
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
from states import appraisal, authority, codes
from states.errors import CampaignError, Refused
from states.keys import secret_key

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
    code: str = Field(
        default="",
        description="decided_by's own one-time code for this ballot and decision (8 digits, from their "
        "approval_requested notice)",
    )


def idempotency_key(campaign: str, meeting_id: int | str) -> str:
    return f"{campaign}:ballot:{meeting_id}"


def pending_markdown(campaign: str, branch_id: str, meeting_id: str) -> tuple[int, str]:
    """What awaits the decision (reads only): the number of items and a description for the resume form. Ratings
    from another ballot than this run's are not this run's to decide: refused."""
    with runtime.read(runtime.engine()) as session:
        ratings, withdrawals = appraisal.pending_approval(session, campaign, branch_id)
        others = sorted({str(a.meeting_id) for a in ratings} - {str(meeting_id)})
        if others:
            raise Refused(
                zh=f"党支部 {branch_id} 待批准的评定结果来自第 {'、'.join(others)} 次投票，不是第 {meeting_id} 次",
                en=f"branch {branch_id}'s ratings awaiting approval are from ballot {', '.join(others)}, not {meeting_id}",
            )
        lines = [f"**{campaign} · branch {branch_id}**: the branch member meeting's ballot awaits approval.", ""]
        lines += [f"- {a.member_id}: **{a.rating}**" for a in ratings]
        lines += [f"- {a.member_id}: confirmed withdrawal" for a in withdrawals]
    lines += [
        "",
        "Only the committee secretary and the party group's secretary or deputy may decide: write your roster id "
        "in *decided_by* and, in *code*, your own one-time code for the decision you take (approve or reject), "
        "from your approval_requested notice. A rejection needs a comment.",
    ]
    return len(ratings) + len(withdrawals), "\n".join(lines)


def answer_problem(campaign: str, answer: ApprovalInput) -> str | None:
    """Why an answer cannot be recorded, before its code is looked at (reads only), or None."""
    if answer.decision == "reject" and not answer.comment.strip():
        return "a rejection needs a comment (the branch reviews again)"
    try:
        with runtime.read(runtime.engine()) as session:
            authority.leader(session, answer.decided_by.strip(), zh="批准", en="approve")
    except CampaignError as exc:
        return str(exc)
    if not codes.normalized(answer.code):
        return f"{answer.decided_by.strip()}'s one-time code is required (in their approval_requested notice)"
    return None


@task(name="record-decision", cache_policy=NONE)
def record_decision(
    campaign: str, branch_id: str, meeting_id: str, decision: str, decided_by: str, comment: str, code: str,
    at: dt.datetime, flow_run_id: str | None, attempt: str,
) -> dict[str, Any]:
    """Check and spend the leader's code, and record the decision as `campaign approve` records it, in one
    transaction. A wrong, spent or locked code comes back as `code_refused` (the wrong try is committed, nothing
    else); a refusal of the decision itself as `refused` — the code stays spent: it was seen."""
    try:
        key = secret_key(runtime.settings(), codes.KEY_NAME)
        with runtime.write(runtime.engine(), at) as session:
            verdict = codes.redeem(
                session, key, purpose="approval", campaign=campaign, subject=codes.ballot_subject(branch_id, meeting_id),
                person=decided_by, given=code, at=at, attempt=attempt, variant=decision,
            )
            if verdict is not codes.Verdict.VERIFIED:
                return {"code_refused": codes.refusal(verdict, decided_by)}
            try:
                with session.begin_nested():
                    result = appraisal.approve(
                        session, campaign, branch_id, decided_by, at, reject=decision == "reject", reason=comment,
                        source="prefect-ui, code verified", flow_run_id=flow_run_id,
                    )
            except CampaignError as exc:
                return {"refused": runtime.one_line(exc)}
    except CampaignError as exc:
        return {"refused": runtime.one_line(exc)}
    return {"approved": result.approved, "rejected": result.rejected, "withdrawn": result.withdrawn}


def forget_answers(asks: int) -> None:
    """Delete the submitted forms (they hold the codes) from Prefect once the run has no more use for them."""
    from prefect.input import delete_flow_run_input
    from prefect.input.run_input import keyset_from_base_key

    for ask in range(asks):
        try:
            delete_flow_run_input(keyset_from_base_key(f"suspended-decision-{ask}")["response"])
        except Exception:  # noqa: BLE001 - best effort: a spent code is worthless; the decision stands either way
            get_run_logger().warning("could not delete answer %d of this run from Prefect", ask + 1)


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
    # Everything above the suspension runs again on resume: reads only. Each answer's verdict is replayed too: its
    # wrong try is keyed by (run, answer), so it counts once.
    try:
        waiting, description = pending_markdown(campaign, branch_id, meeting_id)
    except CampaignError as exc:
        return Failed(message=runtime.one_line(exc))
    if not waiting:
        return Completed(message=f"branch {branch_id}: nothing awaits approval (already decided, or no rating stood)")
    run_id = runtime.flow_run_id()
    answer: ApprovalInput | None = None
    result: dict[str, Any] = {}
    problem = ""
    asks = 0
    for ask in range(MAX_ASKS):
        asks = ask + 1
        answer = suspend_flow_run(
            wait_for_input=ApprovalInput.with_initial_data(description=description, decision="approve"),
            timeout=timeout_days * 24 * 3600,  # explicit: suspension has no useful default for a committee's days
            key=f"decision-{ask}",
        )
        problem = answer_problem(campaign, answer) or ""
        if not problem:
            try:
                when = runtime.instant(runtime.engine(), campaign, at or None)
            except CampaignError as exc:
                forget_answers(asks)
                return Failed(message=runtime.one_line(exc))
            result = record_decision(
                campaign, branch_id, meeting_id, answer.decision, answer.decided_by.strip(), answer.comment.strip(),
                answer.code, when, run_id, f"{run_id or 'local'}:{ask}",
            )
            problem = result.get("code_refused", "")
            if not problem:
                break
        logger.warning("answer %d not recorded: %s — asking again", ask + 1, problem)
        description = f"**Not recorded:** {problem}\n\n{description}"
        answer = None
    forget_answers(asks)
    if answer is None:
        return Failed(message=f"campaign: 提交 {MAX_ASKS} 次仍无有效决定（最后一次：{problem}）")
    if "refused" in result:
        return Failed(message=result["refused"])
    if not any(result.values()):
        logger.info("branch %s: nothing awaited approval any more (decided elsewhere first)", branch_id)
    else:
        logger.info(
            "branch %s: %s by %s (code verified) — %d approved, %d rejected, %d withdrawn", branch_id,
            answer.decision, answer.decided_by, len(result["approved"]), len(result["rejected"]),
            len(result["withdrawn"]),
        )
    return {
        "decision": answer.decision, "decided_by": answer.decided_by.strip(), "source": "prefect-ui",
        "code": "verified", **result,
    }


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
