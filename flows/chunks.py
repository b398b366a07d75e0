"""A deadline's chunks as `sweep-chunks` flow runs on a process work pool, shared by its workers on every host.

Opt-in by `CAMPAIGN_CHUNK_POOL=<work pool>` (PostgreSQL only). The sweep records the groups first
(`states.planned`), starts one flow run per group with `run_deployment(timeout=0)` (linked to the sweep's run as
subflows), then polls them together until each has ended: a sweep that waited for each in turn would run them one
after another. Any group that did not complete fails the sweep, after all the others have ended, with one line per
failed group; re-running the sweep is safe (done chunks are skipped). While groups are still waiting to start and
no worker polls the pool any more, the sweep cancels those and fails rather than wait for ever.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any
from uuid import UUID

from states.errors import CampaignError

FLOW = "sweep-chunks"
DEPLOYMENT = f"{FLOW}/{FLOW}"
POLL_SECONDS = 2.0


class PoolUnavailable(CampaignError):
    """The pool path is asked for but cannot run: no deployment on that pool, or no worker polling it."""


def check_pool(pool: str) -> None:
    """The `sweep-chunks` deployment exists on `pool` and at least one worker polls that pool."""
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    with get_client(sync_client=True) as client:
        try:
            deployment = client.read_deployment_by_name(DEPLOYMENT)
        except ObjectNotFound:
            raise PoolUnavailable(
                zh=f"已设 CAMPAIGN_CHUNK_POOL={pool}，但没有部署 {DEPLOYMENT}：请在代码仓库中运行 `prefect deploy --name {FLOW}`",
                en=f"CAMPAIGN_CHUNK_POOL={pool} but there is no deployment {DEPLOYMENT}: "
                f"run `prefect deploy --name {FLOW}` in the repository",
            ) from None
        if deployment.work_pool_name != pool:
            raise PoolUnavailable(
                zh=f"已设 CAMPAIGN_CHUNK_POOL={pool}，但部署 {DEPLOYMENT} 运行在"
                f"{deployment.work_pool_name or '非工作池上（由 make run 提供）'}",
                en=f"CAMPAIGN_CHUNK_POOL={pool} but deployment {DEPLOYMENT} runs on "
                f"{deployment.work_pool_name or 'no work pool (served by make run)'}",
            )
        if not _pool_ready(client, pool):
            raise PoolUnavailable(
                zh=f"没有工作进程轮询工作池 {pool!r}：请用 `prefect worker start --pool {pool}` 启动一个",
                en=f"no worker polls work pool {pool!r}: start one with `prefect worker start --pool {pool}`",
            )


def _pool_ready(client: Any, pool: str) -> bool:
    """A pool is READY while at least one of its workers has sent a heartbeat recently."""
    from prefect.client.schemas.objects import WorkPoolStatus
    from prefect.exceptions import ObjectNotFound

    try:
        return client.read_work_pool(pool).status == WorkPoolStatus.READY
    except ObjectNotFound:
        return False


def start_groups(campaign: str, sweep_id: str, deadline: str, count: int) -> list[UUID]:
    """One `sweep-chunks` flow run per planned group; returns their ids at once (they run on the pool's workers)."""
    from prefect.deployments import run_deployment

    return [
        run_deployment(
            DEPLOYMENT,
            parameters={"campaign": campaign, "sweep_id": sweep_id, "deadline": deadline, "group": number},
            flow_run_name=f"{campaign} {deadline} {number + 1}/{count}",
            idempotency_key=f"{sweep_id}:{deadline}:{number}",  # a retried call never starts a group twice
            timeout=0,
            as_subflow=True,
        ).id
        for number in range(count)
    ]


def wait_for_groups(pool: str, runs: list[UUID], on_end: Callable[[int], None]) -> list[str]:
    """Poll the groups' runs until every one has ended (`on_end(group)` after each); returns one line per run that
    did not complete. Runs still waiting for a worker when none polls the pool are cancelled and reported."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
    from prefect.states import Cancelled

    waiting = set(runs)
    number = {run: n for n, run in enumerate(runs)}
    failures: list[str] = []
    with get_client(sync_client=True) as client:
        while waiting:
            time.sleep(POLL_SECONDS)
            found = client.read_flow_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=list(waiting))))
            for run in found:
                if run.state is None or not run.state.is_final():
                    continue
                waiting.discard(run.id)
                on_end(number[run.id])
                if not run.state.is_completed():
                    failures.append(f"{run.name}: {run.state.name}: {run.state.message or ''}".rstrip(": "))
            unstarted = [r for r in found if r.id in waiting and r.state is not None and r.state.is_scheduled()]
            if unstarted and not _pool_ready(client, pool):
                for run in unstarted:
                    client.set_flow_run_state(run.id, Cancelled(message=f"no worker polls work pool {pool!r}"), force=True)
                    waiting.discard(run.id)
                    failures.append(f"{run.name}: not started: no worker polls work pool {pool!r}")
    return failures
