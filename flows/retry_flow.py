"""`retry-stuck`: an operator re-checks named members or branches from the UI's custom-run form.

The same `states.operations.retry` as `campaign retry`: authority, conditions and the log are decided there.
A refusal (no authority, unknown id, nothing that could advance) fails the run with the CLI's one-line reason.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NONE
from prefect.states import Failed, State

from flows import runtime
from flows.artifacts import publish_progress
from flows.limits import one_run_per_campaign
from states import operations
from states.errors import CampaignError


# cache_policy=NONE: the same form submitted twice must retry twice (the second finds less to move).
@task(name="retry", cache_policy=NONE)
def retry_task(
    campaign: str, members: list[str], branches: list[str], all_stuck: bool, actor: str, reason: str,
    at: dt.datetime, flow_run_id: str | None,
) -> dict[str, Any]:
    """The retry in one transaction; a refusal is an answer (`refused`: the CLI's line), not a crash."""
    try:
        with runtime.write(runtime.engine(), at) as session:
            result = operations.retry(
                session, campaign, actor, reason, at, members=members or None, branches=branches or None,
                all_stuck=all_stuck, flow_run_id=flow_run_id,
            )
    except CampaignError as exc:
        return {"refused": runtime.one_line(exc)}
    return {
        "advanced": result.advanced,
        "held": result.held,
        "moved": {"members": result.moved_members, "branches": result.moved_branches},
    }


@flow(name="retry-stuck", description="Re-check and advance stuck members or branches, as far as their conditions allow.")
def retry_stuck(
    campaign: str,
    actor: str,
    reason: str,
    branches: list[str] = [],  # noqa: B006 - Prefect validates parameters into fresh objects for every run
    members: list[str] = [],  # noqa: B006
    all_stuck: bool = False,
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
        at: simulated time T, ISO 8601 (no offset = the campaign's timezone); empty = now
    """
    logger = get_run_logger()
    if not (members or branches or all_stuck):
        return Failed(message="campaign: name members, branches or all_stuck")
    if not actor.strip() or not reason.strip():
        return Failed(message="campaign: actor and reason are required")
    try:
        db = runtime.engine()
        when = runtime.instant(db, campaign, at or None)
    except CampaignError as exc:
        return Failed(message=runtime.one_line(exc))
    run_id = runtime.flow_run_id()
    with one_run_per_campaign(campaign, run_id):
        result = retry_task(campaign, list(members), list(branches), all_stuck, actor, reason, when, run_id)
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
        return Failed(message="campaign: nothing named could advance")
    return runtime.jsonable(result)
