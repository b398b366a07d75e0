"""One run per campaign at a time: a Prefect global concurrency limit named after the campaign.

A deployment's own `concurrency_limit` counts the runs of that one deployment, whatever their parameters: it
would keep two campaigns from sweeping side by side and still let `reminders` overlap `phase-deadline` for the
same campaign. A global concurrency limit is named, so every sweeping flow (phase-deadline, reminders,
retry-stuck) takes the slot of `campaign-<key>` and only runs for the same campaign wait for one another. The
slot is a lease: a run that dies without releasing it frees it when the lease expires. The database's record
of fired deadlines and done chunks stays the real guarantee of once-only; this only keeps sweeps from
overlapping (and SQLite writers from queueing behind one another).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, suppress
from uuid import UUID

LIMIT_PREFIX = "campaign-"
WAIT_SECONDS = 6 * 3600  # a sweep queued behind another waits this long, then fails (and can be re-run)


def limit_name(campaign: str) -> str:
    return f"{LIMIT_PREFIX}{campaign}"


def ensure_limit(campaign: str) -> str:
    """Create the campaign's limit (one slot) if it does not exist; an operator's later change is kept."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
    from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound

    name = limit_name(campaign)
    with get_client(sync_client=True) as client:
        try:
            client.read_global_concurrency_limit_by_name(name)
        except ObjectNotFound:
            with suppress(ObjectAlreadyExists):  # another run created it first
                client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name=name, limit=1))
    return name


@contextmanager
def one_run_per_campaign(campaign: str, flow_run_id: str | None) -> Iterator[None]:
    """Hold the campaign's slot while the body runs; wait for it while another run of the campaign holds it."""
    from prefect.client.schemas.objects import ConcurrencyLeaseHolder
    from prefect.concurrency.sync import concurrency

    holder = ConcurrencyLeaseHolder(type="flow_run", id=UUID(flow_run_id)) if flow_run_id else None
    with concurrency(ensure_limit(campaign), occupy=1, timeout_seconds=WAIT_SECONDS, strict=True, holder=holder):
        yield
