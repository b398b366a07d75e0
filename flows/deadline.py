"""`phase-deadline`: one flow run per firing — the sweep planned by states/, run as one task per unit (per chunk).

The flow decides nothing: `states.sweep` plans the units (each deadline due × each chunk of branches, the
deadline's record, the stuck pass per chunk, the finish) and runs each one as a transaction. Re-running a failed
run is safe: fired deadlines and done chunks are recorded, so a second run skips what the first one finished.

With `CAMPAIGN_CHUNK_POOL` set (PostgreSQL), a deadline's chunks leave this process: the sweep records them in
groups (`states.planned`) and each group runs as a `sweep-chunks` flow run on that work pool (`flows/chunks.py`),
taken by whichever worker, on whichever host, polls first; the rest of the sweep stays here.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from contextlib import ExitStack
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_progress_artifact, update_progress_artifact
from prefect.cache_policies import NONE
from prefect.states import Failed, State
from sqlalchemy import Engine

from flows import chunks, runtime
from flows.artifacts import local_time, publish_audit_head, publish_progress, publish_report, publish_summary
from flows.limits import one_run_per_campaign
from states import anchors, planned, running, sweep
from states.engine import Cause
from states.errors import BadInput, CampaignError
from states.status import summary

Unit = tuple[str, sweep.Deadline | None, tuple[str, str] | None]


def unit_label(unit: Unit) -> str:
    kind, deadline, chunk = unit
    parts = [kind]
    if deadline is not None:
        parts.append(deadline.name)
    if chunk is not None:
        parts.append(f"{chunk[0]}..{chunk[1]}")
    return " ".join(parts)


@task(name="plan-sweep", cache_policy=NONE)
def plan_sweep(campaign: str, at: dt.datetime, branches_per_chunk: int) -> sweep.SweepPlan:
    """Which deadlines are due at T and how the branches are cut into chunks (reads only)."""
    with runtime.read(runtime.engine()) as session:
        return sweep.plan_sweep(session, campaign, at, branches_per_chunk)


# No input caching (cache_policy=NONE) and no retries: a unit is one transaction that either committed or
# changed nothing, and the database, not Prefect, remembers which units are done.
@task(name="sweep-unit", cache_policy=NONE, task_run_name="{label}")
def run_unit(plan: sweep.SweepPlan, unit: Unit, label: str, actor: str, flow_run_id: str | None) -> str:
    cause = Cause(cause="sweep", actor=actor, flow_run_id=flow_run_id, sweep_id=plan.sweep_id)
    with runtime.write(runtime.engine(), plan.at, anchor=False) as session:
        sweep.run_unit(session, plan, unit, cause)
    return label


def _groups(units: list[Unit], parallel: bool) -> list[list[Unit]]:
    """Units in the order states/ yields them; on PostgreSQL the chunks of one deadline form one group that may
    run side by side (they touch disjoint branches). SQLite has one writer: every unit is its own group."""
    groups: list[list[Unit]] = []
    for unit in units:
        previous = groups[-1][-1] if groups else None
        if (
            parallel
            and previous is not None
            and unit[0] == "fire"
            and previous[0] == "fire"
            and previous[1] == unit[1]
        ):
            groups[-1].append(unit)
        else:
            groups.append([unit])
    return groups


def _parallel_chunks(db: Engine) -> bool:
    return db.dialect.name == "postgresql"


class _PoolFailure(CampaignError):
    def __init__(self, deadline: str, failures: list[str]) -> None:
        super().__init__(
            zh=f"截止 {deadline!r} 的分块组未全部完成（{'；'.join(failures)}）；"
            "该截止未记为已触发：请重新运行扫描（已完成的分块会跳过）",
            en=f"the chunk groups of deadline {deadline!r} did not all complete ({'; '.join(failures)}); "
            "the deadline is not recorded as fired: re-run the sweep (done chunks are skipped)",
        )


def _plan_on_pool(db: Engine, pool: str, plan: sweep.SweepPlan, group_size: int, run_id: str | None) -> dict[str, int]:
    """Check the pool can take the chunks, then record them in groups: each deadline's number of groups."""
    if not _parallel_chunks(db):
        raise BadInput(
            zh=f"CAMPAIGN_CHUNK_POOL={pool} 需要 PostgreSQL：工作池的各个工作进程在其他主机上，共用同一个数据库",
            en=f"CAMPAIGN_CHUNK_POOL={pool} needs PostgreSQL: the pool's workers, on other hosts, share the database",
        )
    if not plan.due:
        return {}
    chunks.check_pool(pool)
    with runtime.write(db, plan.at, anchor=False) as session:
        return planned.record(session, plan, group_size, run_id)


def _fire_on_pool(
    db: Engine, pool: str, plan: sweep.SweepPlan, deadline: sweep.Deadline, count: int,
    on_end: Callable[[int], None],
) -> list[str]:
    """Run the deadline's planned groups on the pool and wait for all; returns what failed (nothing when every
    chunk of the deadline is recorded done)."""
    runs = chunks.start_groups(plan.key, plan.sweep_id, deadline.name, count)
    failures = chunks.wait_for_groups(pool, runs, on_end)
    if failures:
        return failures
    with runtime.read(db) as session:
        missing = planned.undone(session, plan, deadline)
    return [f"chunks not recorded done: {', '.join(f'{lo}..{hi}' for lo, hi in missing)}"] if missing else []


def run_sweep(campaign: str, at: str | dt.datetime | None, actor: str) -> dict[str, Any] | State:
    """The body shared by `phase-deadline` and `reminders`: plan, run the units in order, publish the artifacts."""
    logger = get_run_logger()
    found = runtime.settings()
    try:
        db = runtime.engine(found)
        when = runtime.instant(db, campaign, at)
    except CampaignError as exc:
        return Failed(message=runtime.one_line(exc))
    run_id = runtime.flow_run_id()
    with one_run_per_campaign(campaign, run_id), ExitStack() as held:
        # Beside the flows' slot, the database's hold: a `campaign sweep` from the command line takes it too.
        try:
            held.enter_context(running.one_sweep(db, campaign))
        except CampaignError as exc:
            return Failed(message=runtime.one_line(exc))
        plan = plan_sweep(campaign, when, found.chunk_branches)
        units = list(sweep.run_units(plan))
        pool = found.chunk_pool
        if pool:
            try:
                group_counts = _plan_on_pool(db, pool, plan, found.chunk_group, run_id)
            except CampaignError as exc:
                return Failed(message=runtime.one_line(exc))
        fired = ", ".join(d.name for d in plan.due) or "nothing"
        logger.info(
            "sweep of %s at %s: fires %s; %d chunks, %d units", campaign, when.isoformat(), fired, len(plan.chunks),
            len(units),
        )
        progress = create_progress_artifact(
            0.0, description=f"Sweep of {campaign} at {when.isoformat()}: {len(units)} units (fires {fired})"
        )
        done = 0
        for group in _groups(units, _parallel_chunks(db)):
            if pool and group[0][0] == "fire":
                deadline = group[0][1]
                assert deadline is not None

                def advance(number: int) -> None:
                    nonlocal done
                    done += len(planned.groups(plan.chunks, found.chunk_group)[number])
                    update_progress_artifact(progress, 100.0 * done / len(units))

                failures = _fire_on_pool(db, pool, plan, deadline, group_counts[deadline.name], advance)
                if failures:
                    return Failed(message=runtime.one_line(_PoolFailure(deadline.name, failures)))
                continue
            if len(group) == 1:
                run_unit(plan, group[0], unit_label(group[0]), actor, run_id)
                done += 1
                update_progress_artifact(progress, 100.0 * done / len(units))
                continue
            futures = [run_unit.submit(plan, unit, unit_label(unit), actor, run_id) for unit in group]
            for future in futures:
                future.result()
                done += 1
                update_progress_artifact(progress, 100.0 * done / len(units))
        with runtime.read(db) as session:
            result = sweep.report(session, plan).as_json()
            facts = summary(session, campaign, when)
            if result["fired"]:
                # A deadline fired: leaders get the report as it stands now, linked from the progress table.
                publish_report(session, campaign, when, found.report_dir)
            publish_progress(session, campaign, when, found.report_dir)
            local = local_time(session, campaign, when)
        publish_summary(campaign, local, result, facts)
        # The chain's head, outside the database twice: the anchor file and Prefect's own database.
        publish_audit_head(campaign, local, anchors.database_label(db.url), runtime.anchor_head(db))
    logger.info(
        "fired: %s; advanced %d members, %d branches; stuck %d members, %d branches",
        ", ".join(result["fired"]) or "nothing", result["advanced"]["members"], result["advanced"]["branches"],
        result["stuck"]["members"], result["stuck"]["branches"],
    )
    return {"campaign": campaign, "at": when.isoformat(), **result}


@flow(name="phase-deadline", description="Fire every deadline due at T (default now), chunk by chunk, then the stuck pass.")
def phase_deadline(campaign: str, at: str | None = None) -> dict[str, Any] | State:
    """Fire the campaign's due deadlines in order and move whoever may move.

    Args:
        campaign: the campaign's key, e.g. sfao-2024
        at: simulated time T, ISO 8601 (no offset = the campaign's timezone); empty = now
    """
    # No `actor` parameter: a flow parameter is a stranger's word, so a sweep is logged as the system's own act
    # (with its flow run id), never in a name someone typed into a form.
    return run_sweep(campaign, at or None, "system")


@flow(
    name="sweep-chunks",
    description="Fire one planned group of a deadline's chunks: started by a sweep on its work pool (CAMPAIGN_CHUNK_POOL).",
)
def sweep_chunks(campaign: str, sweep_id: str, deadline: str, group: int) -> dict[str, Any] | State:
    """Fire the chunks a sweep planned as this group, each in its own transaction, at the sweep's time T, side by
    side (PostgreSQL).

    Args:
        campaign: the campaign's key, e.g. sfao-2024
        sweep_id: the planning sweep's id
        deadline: the deadline being fired, e.g. study
        group: the group's number in that sweep's plan of the deadline (from 0)
    """
    # Parameters only name a group; its chunks and T are read from what the sweep recorded (states.planned), so a
    # stranger can neither invent a chunk nor date one. The moves are the system's, with this run's id.
    try:
        db = runtime.engine()
        with runtime.read(db) as session:
            plan = planned.group(session, campaign, sweep_id, deadline, group)
    except CampaignError as exc:
        return Failed(message=runtime.one_line(exc))
    run_id = runtime.flow_run_id()
    # Side by side, as in the sweep's own process on PostgreSQL: the chunks touch disjoint branches.
    units: list[Unit] = [("fire", plan.due[0], chunk) for chunk in plan.chunks]
    for future in [run_unit.submit(plan, unit, unit_label(unit), "system", run_id) for unit in units]:
        future.result()
    return {"campaign": campaign, "deadline": deadline, "group": group, "chunks": [f"{lo}..{hi}" for lo, hi in plan.chunks]}
