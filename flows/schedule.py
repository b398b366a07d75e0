"""One scheduled run of `phase-deadline` per unfired deadline of a campaign, at the deadline's instant.

Deployment schedules are the wrong tool for one-off dates: the scheduler looks at most 100 days ahead and a
redeploy replaces them. Each run is created through the API with the idempotency key `<campaign>:<deadline>`, so
calling this again (at every service start, at every plan load) creates nothing new. A deadline already due but
not fired gets a run scheduled in the past, which starts at once: the catch-up. A plan that moves an unfired
deadline moves its waiting run with it; a waiting run whose deadline has fired is deleted.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine

from flows import runtime
from states import sweep

DEPLOYMENT = "phase-deadline/phase-deadline"


def idempotency_key(campaign: str, deadline: str) -> str:
    return f"{campaign}:{deadline}"


def unfired(db: Engine, campaign: str) -> list[sweep.Deadline]:
    with runtime.read(db) as session:
        done = sweep.fired(session, campaign)
        return [d for d in sweep.deadlines(session, campaign) if d.name not in done]


@dataclass
class Scheduling:
    """What one call changed in Prefect: runs created, runs moved to their deadline's new instant, runs deleted
    (their deadline has fired)."""

    created: int = 0
    moved: int = 0
    removed: int = 0


def schedule_deadlines(campaign_key: str, db: Engine | None = None) -> int:
    """Create the missing scheduled runs and move those a plan change left behind; returns how many were created
    (0 when all exist already)."""
    return sync_deadlines(campaign_key, db).created


def sync_deadlines(campaign_key: str, db: Engine | None = None) -> Scheduling:
    """Make the campaign's scheduled `phase-deadline` runs match its unfired deadlines.

    A run still waiting (Scheduled or Late) whose deadline has moved is rescheduled in place to the new instant (a
    forced Scheduled state: the same run and idempotency key, its history showing the move), so it never fires at
    the old one; a waiting run whose deadline has fired is deleted; a deadline without a run gets one.
    """
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        DeploymentFilter,
        DeploymentFilterId,
        FlowRunFilter,
        FlowRunFilterIdempotencyKey,
    )
    from prefect.states import Scheduled

    db = db or runtime.engine()
    with runtime.read(db) as session:
        every = {idempotency_key(campaign_key, d.name): d for d in sweep.deadlines(session, campaign_key)}
    pending = {d.name for d in unfired(db, campaign_key)}
    wanted = {key: d for key, d in every.items() if d.name in pending}
    result = Scheduling()
    with get_client(sync_client=True) as client:
        deployment = client.read_deployment_by_name(DEPLOYMENT)
        runs = client.read_flow_runs(
            deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment.id])),
            flow_run_filter=FlowRunFilter(idempotency_key=FlowRunFilterIdempotencyKey(any_=list(every))),
        )
        existing: set[str] = set()
        for run in runs:
            key = run.idempotency_key or ""
            # Only the runs this module made for this campaign: a key names its deadline, the parameter its campaign.
            if key not in every or (run.parameters or {}).get("campaign") != campaign_key:
                continue
            existing.add(key)
            if run.state is None or not run.state.is_scheduled():
                continue  # running or over: nothing to move
            if key not in wanted:
                client.delete_flow_run(run.id)
                existing.discard(key)
                result.removed += 1
                continue
            due = wanted[key].due_at
            if run.state.state_details.scheduled_time != due:
                client.set_flow_run_state(run.id, Scheduled(scheduled_time=due), force=True)
                result.moved += 1
        for key, deadline in wanted.items():
            if key in existing:
                continue
            # The key guards a race with another caller too: the server returns the run that already exists.
            client.create_flow_run_from_deployment(
                deployment.id,
                parameters={"campaign": campaign_key},
                state=Scheduled(scheduled_time=deadline.due_at),
                idempotency_key=key,
                name=f"{campaign_key}-{deadline.name}-deadline",
                tags=[f"campaign:{campaign_key}", "deadline"],
            )
            result.created += 1
    return result


def schedule_all(db: Engine | None = None) -> dict[str, int]:
    """Every loaded campaign's unfired deadlines (what `make run` does at start)."""
    from sqlalchemy import select

    from states.models import Campaign

    db = db or runtime.engine()
    with runtime.read(db) as session:
        keys = list(session.scalars(select(Campaign.key).order_by(Campaign.key)))
    return {key: schedule_deadlines(key, db) for key in keys}
