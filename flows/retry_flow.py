"""`retry-stuck`: an operator re-checks named members or branches from the UI's custom-run form.

The same `states.operations.retry` as `campaign retry`: authority, conditions and the log are decided there.
A refusal (no authority, unknown id, nothing that could advance) fails the run with the CLI's one-line reason.

The UI's login says only "an operator"; the `actor` is believed only with that person's one-time code for this
very request (`states/codes.py`: bound to the day, the members, branches, all_stuck and the reason). A run without
a code first tries the request without keeping anything (so a request the rules refuse sends no code), then queues
the code to the actor alone (notice `action_code`, the code computed at delivery from the key) and ends Failed,
saying so; the actor runs the same request again with it, the same day. The code is spent in the transaction that
retries; a wrong one counts towards that person's lockout (5) and records nothing. A code in a run's parameters is
seen by every operator, but by then it is spent, and it could only ever have repeated that same request.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NONE
from prefect.states import Failed, State
from sqlalchemy.orm import Session

from flows import runtime
from flows.artifacts import publish_progress
from flows.limits import one_run_per_campaign
from states import codes, operations
from states.clock import local_date
from states.errors import CampaignError
from states.keys import secret_key
from states.models import Campaign

NOTHING_ADVANCED = "所列对象均未能推进"  # as the CLI says it (`campaign retry`)


def _result(result: operations.RetryResult) -> dict[str, Any]:
    return {
        "advanced": result.advanced,
        "held": result.held,
        "moved": {"members": result.moved_members, "branches": result.moved_branches},
    }


def send_code(
    campaign: str, members: list[str], branches: list[str], all_stuck: bool, actor: str, reason: str,
    at: dt.datetime,
) -> str | None:
    """The request tried and rolled back (the rules' refusal, if any, comes back as the one line); if it would act,
    the actor's code for it is queued to them. Returns the refusal, or None when the code was queued."""
    db = runtime.engine()
    try:
        with Session(db) as session:
            try:
                trial = operations.retry(
                    session, campaign, actor, reason, at, members=members or None, branches=branches or None,
                    all_stuck=all_stuck,
                )
            finally:
                session.rollback()  # a trial: nothing of it is kept
        if not all_stuck and trial.moved_members == 0 and trial.moved_branches == 0:
            return f"{runtime.REFUSAL_PREFIX}{NOTHING_ADVANCED}"
        with runtime.write(db, at) as session:
            campaign_row = session.get(Campaign, campaign)
            assert campaign_row is not None  # runtime.instant found it
            codes.queue_retry_code(
                session, campaign, actor, local_date(at, campaign_row.timezone), members, branches, all_stuck,
                reason, at,
            )
    except CampaignError as exc:
        return runtime.one_line(exc)
    return None


# cache_policy=NONE: the same form submitted twice must retry twice (the second finds less to move).
@task(name="retry", cache_policy=NONE)
def retry_task(
    campaign: str, members: list[str], branches: list[str], all_stuck: bool, actor: str, reason: str,
    code: str, at: dt.datetime, flow_run_id: str | None,
) -> dict[str, Any]:
    """The code checked and spent, and the retry, in one transaction; a refusal is an answer (`refused`: the CLI's
    line), not a crash. A wrong code is committed as a wrong try, and nothing else."""
    try:
        key = secret_key(runtime.settings(), codes.KEY_NAME)
        with runtime.write(runtime.engine(), at) as session:
            campaign_row = session.get(Campaign, campaign)
            assert campaign_row is not None  # runtime.instant found it
            subject = codes.retry_subject(local_date(at, campaign_row.timezone), members, branches, all_stuck, reason)
            verdict = codes.redeem(
                session, key, purpose="retry", campaign=campaign, subject=subject, person=actor, given=code, at=at,
                attempt=flow_run_id or uuid.uuid4().hex,
            )
            if verdict is not codes.Verdict.VERIFIED:
                return {"refused": f"{runtime.REFUSAL_PREFIX}{codes.refusal(verdict, actor)}"}
            with session.begin_nested():  # a refusal undoes the retry; the code stays spent: it was seen
                result = operations.retry(
                    session, campaign, actor, f"{reason} (via prefect-ui, code verified)", at,
                    members=members or None, branches=branches or None, all_stuck=all_stuck, flow_run_id=flow_run_id,
                )
    except CampaignError as exc:
        return {"refused": runtime.one_line(exc)}
    return _result(result)


@flow(name="retry-stuck", description="Re-check and advance stuck members or branches, as far as their conditions allow.")
def retry_stuck(
    campaign: str,
    actor: str,
    reason: str,
    branches: list[str] = [],  # noqa: B006 - Prefect validates parameters into fresh objects for every run
    members: list[str] = [],  # noqa: B006
    all_stuck: bool = False,
    code: str = "",
    at: str | None = None,
) -> dict[str, Any] | State:
    """Re-check the named members or branches (or every stuck one the actor may act on) and advance them.

    Args:
        campaign: the campaign's key, e.g. sfao-2024
        actor: who acts: a roster id (a branch secretary for their branch; the committee for anyone)
        reason: why, for the audit log
        branches: branch ids, e.g. ["B03"]
        members: member ids, e.g. ["M105"]
        all_stuck: every stuck member and branch the actor may act on
        code: the actor's one-time code for this request; leave empty to have it sent to the actor, then run the
            same request again with it, the same day
        at: simulated time T, ISO 8601 (no offset = the campaign's timezone); empty = now
    """
    logger = get_run_logger()
    if not (members or branches or all_stuck):
        return Failed(message="campaign: 请指定 members、branches 或 all_stuck")
    if not actor.strip() or not reason.strip():
        return Failed(message="campaign: 须填写 actor 和 reason")
    actor, reason = actor.strip(), reason.strip()
    try:
        db = runtime.engine()
        when = runtime.instant(db, campaign, at or None)
    except CampaignError as exc:
        return Failed(message=runtime.one_line(exc))
    run_id = runtime.flow_run_id()
    if not codes.normalized(code):
        refused = send_code(campaign, list(members), list(branches), all_stuck, actor, reason, when)
        if refused:
            return Failed(message=refused)
        return Failed(
            message=f"campaign: 本次申请的一次性验证码已发给 {actor}（其 action_code 通知，由 dispatch-notifications "
            "送达）；请在今天内以该验证码为 code 再次提交同一申请"
        )
    with one_run_per_campaign(campaign, run_id):
        result = retry_task(campaign, list(members), list(branches), all_stuck, actor, reason, code, when, run_id)
        if "refused" in result:  # the run fails with the one line the CLI would print
            return Failed(message=result["refused"])
        with runtime.read(db) as session:
            publish_progress(session, campaign, when, runtime.settings().report_dir)
    for member_id, (before, after) in result["advanced"].items():
        logger.info("%s: %s → %s", member_id, before, after)
    for subject, held in result["held"].items():
        unmet = "; ".join(f"{u['condition']} {u['have']}/{u['need']}" for u in held.get("unmet", []))
        logger.info("%s: still %s%s", subject, held["state"], f" ({unmet})" if unmet else "")
    moved = result["moved"]
    if not all_stuck and moved["members"] == 0 and moved["branches"] == 0:
        return Failed(message=f"campaign: {NOTHING_ADVANCED}")
    return runtime.jsonable(result)
