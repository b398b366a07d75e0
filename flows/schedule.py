"""One scheduled run of `phase-deadline` per unfired deadline of a campaign, at the deadline's instant.

Deployment schedules are the wrong tool for one-off dates: the scheduler looks at most 100 days ahead and a
redeploy replaces them. Each run is created through the API with the idempotency key `<campaign>:<deadline>`, so
calling this again (at every service start, at every plan load) creates nothing new. A deadline already due but
not fired gets a run scheduled in the past, which starts at once: the catch-up.
"""

from __future__ import annotations

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


def schedule_deadlines(campaign_key: str, db: Engine | None = None) -> int:
    """Create the missing scheduled runs; returns how many were created (0 when all exist already)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        DeploymentFilter,
        DeploymentFilterId,
        FlowRunFilter,
        FlowRunFilterIdempotencyKey,
    )
    from prefect.states import Scheduled

    wanted = {idempotency_key(campaign_key, d.name): d for d in unfired(db or runtime.engine(), campaign_key)}
    if not wanted:
        return 0
    with get_client(sync_client=True) as client:
        deployment = client.read_deployment_by_name(DEPLOYMENT)
        existing = {
            run.idempotency_key
            for run in client.read_flow_runs(
                deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment.id])),
                flow_run_filter=FlowRunFilter(idempotency_key=FlowRunFilterIdempotencyKey(any_=list(wanted))),
            )
        }
        created = 0
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
            created += 1
    return created


def schedule_all(db: Engine | None = None) -> dict[str, int]:
    """Every loaded campaign's unfired deadlines (what `make run` does at start)."""
    from sqlalchemy import select

    from states.models import Campaign

    db = db or runtime.engine()
    with runtime.read(db) as session:
        keys = list(session.scalars(select(Campaign.key).order_by(Campaign.key)))
    return {key: schedule_deadlines(key, db) for key in keys}
