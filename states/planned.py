"""The chunks a sweep hands to other processes (a work pool's workers, on any host), recorded before they start.

A chunk flow is started with parameters, and a parameter is a stranger's word: anyone who may start a flow run may
pass any. So the planning sweep writes each chunk of each due deadline here, in numbered groups, and a chunk flow
asks only for (campaign, sweep, deadline, group): the chunks' bounds and the sweep's time T come from these rows.
A group nobody planned is refused; a planned group run twice is harmless, as the firing skips done chunks.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from states.errors import NotFound
from states.models import DoneChunk, PlannedChunk
from states.sweep import Deadline, SweepPlan, deadlines


def groups(chunks: list[tuple[str, str]], size: int) -> list[list[tuple[str, str]]]:
    """Consecutive chunks, `size` to a group (one flow run each)."""
    size = max(size, 1)
    return [chunks[i : i + size] for i in range(0, len(chunks), size)]


def record(session: Session, plan: SweepPlan, group_size: int, flow_run_id: str | None) -> dict[str, int]:
    """Write every chunk of every due deadline of `plan`, in groups; returns each deadline's number of groups."""
    cut = groups(plan.chunks, group_size)
    session.add_all(
        PlannedChunk(
            sweep_id=plan.sweep_id, deadline=deadline.name, lo=lo, hi=hi, campaign_key=plan.key, grp=number,
            at=plan.at, flow_run_id=flow_run_id,
        )
        for deadline in plan.due
        for number, chunks in enumerate(cut)
        for lo, hi in chunks
    )
    return {deadline.name: len(cut) for deadline in plan.due}


def group(session: Session, key: str, sweep_id: str, deadline: str, number: int) -> SweepPlan:
    """The planned group as a plan of its own: the sweep's id and T, the one deadline, the group's chunks.
    NotFound when no sweep of the campaign planned it."""
    rows = session.scalars(
        select(PlannedChunk)
        .where(
            PlannedChunk.sweep_id == sweep_id,
            PlannedChunk.campaign_key == key,
            PlannedChunk.deadline == deadline,
            PlannedChunk.grp == number,
        )
        .order_by(PlannedChunk.lo)
    ).all()
    if not rows:
        raise NotFound(
            zh=f"扫描 {sweep_id!r} 中没有为活动 {key!r} 截止 {deadline!r} 规划的第 {number} 组",
            en=f"no sweep of {key!r} planned group {number} of deadline {deadline!r} in sweep {sweep_id!r}",
        )
    (found,) = [d for d in deadlines(session, key) if d.name == deadline]
    return SweepPlan(key, rows[0].at, [found], [(r.lo, r.hi) for r in rows], sweep_id=sweep_id)


def undone(session: Session, plan: SweepPlan, deadline: Deadline) -> list[tuple[str, str]]:
    """The chunks of `deadline` in `plan` that no firing has recorded as done (the planning sweep checks this
    before it records the deadline as fired)."""
    done = set(
        session.execute(
            select(DoneChunk.lo, DoneChunk.hi).where(
                DoneChunk.campaign_key == plan.key, DoneChunk.deadline == deadline.name
            )
        ).all()
    )
    return [chunk for chunk in plan.chunks if chunk not in done]
