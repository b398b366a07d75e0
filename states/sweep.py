"""The sweep: fire every due deadline in order, chunk by chunk, then move whoever has mended their gap.

A deadline's firing decides as the deadline would have (evidence up to the phase's last day, publicity at the
deadline's instant), whenever it runs. Each chunk of branches is one transaction: branches first, then their
members, the log and the notices with them; a finished chunk is recorded, so a crashed firing resumes after it.
"""

from __future__ import annotations

import datetime as dt
import math
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import (
    JSON,
    ColumnElement,
    Engine,
    and_,
    distinct,
    false,
    func,
    literal,
    not_,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.orm import Session, aliased

from states import audit, counts, outbox, running
from states import branch as branch_machine
from states import member as member_machine
from states.clock import as_utc, local_date
from states.conditions import EvalContext, Row, condition, rating_final
from states.db import changed, insert_ignoring_duplicates, json_object
from states.engine import (
    Cause,
    _key,
    figures_json,
    member_context,
    move_branches,
    move_members,
    queue_members_and_secretaries,
    queue_members_moved,
)
from states.errors import NotFound
from states.evaluate import MemberScope, branch_rows, branches_between, context, in_branches, member_rows
from states.machine import PHASES
from states.models import (
    Appraisal,
    BranchProgress,
    Campaign,
    DoneChunk,
    FiredDeadline,
    MemberProgress,
    Person,
    Phase,
    TransitionLog,
)
from states.status import passed_phases, phase_at, summary

START = "start"
ESCALATION_ROLES = {"direct": "committee_secretary", "second": "party_group_deputy", "first": "party_group_secretary"}
# Conditions a reminder names: those the member can still act on before the deadline.
NOT_REMINDED = {"branch", "member_meeting_ballot", "approval", "publicity", "qualified", "followup"}


@dataclass(frozen=True)
class Deadline:
    name: str  # "start" or the phase whose deadline it is
    due_at: dt.datetime
    cutoff: dt.date | None  # the phase's last day; None for the start


@dataclass
class SweepReport:
    fired: list[str] = field(default_factory=list)
    advanced_members: int = 0
    advanced_branches: int = 0
    stuck_members: int = 0
    stuck_branches: int = 0

    def as_json(self) -> dict[str, Any]:
        return {
            "fired": self.fired,
            "advanced": {"members": self.advanced_members, "branches": self.advanced_branches},
            "stuck": {"members": self.stuck_members, "branches": self.stuck_branches},
        }


def deadlines(session: Session, key: str) -> list[Deadline]:
    """The campaign's start and each phase's deadline, in order."""
    phases = session.scalars(select(Phase).where(Phase.campaign_key == key).order_by(Phase.seq)).all()
    if not phases:
        raise NotFound(zh=f"没有活动 {key!r}", en=f"unknown campaign {key!r}")
    found = [Deadline(START, as_utc(phases[0].starts_at), None)]
    found += [Deadline(p.name, as_utc(p.deadline_at), p.end) for p in phases]
    return found


def fired(session: Session, key: str) -> set[str]:
    return set(session.scalars(select(FiredDeadline.name).where(FiredDeadline.campaign_key == key)))


def due(session: Session, key: str, at: dt.datetime) -> list[Deadline]:
    """Deadlines due at T that have not fired, in order."""
    done = fired(session, key)
    return [d for d in deadlines(session, key) if d.due_at <= at and d.name not in done]


def chunks(session: Session, key: str, size: int) -> list[tuple[str, str]]:
    """The campaign's branches in id order, cut into ranges of `size` (one transaction, one task each)."""
    ids = list(
        session.scalars(
            select(BranchProgress.branch_id).where(BranchProgress.campaign_key == key).order_by(BranchProgress.branch_id)
        )
    )
    return [(ids[i], ids[min(i + size, len(ids)) - 1]) for i in range(0, len(ids), max(size, 1))]


def chunk_size_for(session: Session, key: str, branches_per_chunk: int, max_chunks: int = 100) -> int:
    """At least `branches_per_chunk`, and few enough chunks that a province is still ~100 tasks."""
    total = session.scalar(select(func.count()).select_from(BranchProgress).where(BranchProgress.campaign_key == key))
    return max(branches_per_chunk, math.ceil((total or 0) / max_chunks))


def _deadline_label(session: Session, key: str, phase: str) -> str:
    end = session.scalar(select(Phase.end).where(Phase.campaign_key == key, Phase.name == phase))
    return end.isoformat() if end else ""


def _enter_phase_notices(
    session: Session, ctx: EvalContext, key: str, step: str, dest: str, scope: MemberScope | None = None
) -> int:
    if dest not in PHASES:
        return 0
    deadline = _deadline_label(session, key, dest)
    return queue_members_moved(session, ctx, step, "phase_started", dest, deadline, dest, scope)


def _oath_notices(session: Session, ctx: EvalContext, key: str, branch_step: str) -> int:
    """A branch entering the pledge phase: each of its members is told of the oath ceremony."""
    deadline = _deadline_label(session, key, "pledge")
    row = Row()
    source = (
        select(
            _key(row.person.member_id, "oath_ceremony", key, row.person.branch_id, "pledge").label("key"),
            literal(key).label("campaign_key"),
            row.person.member_id.label("recipient_id"),
            literal({"phase": "pledge", "deadline": deadline}, JSON).label("context"),  # the member is the recipient
        )
        .select_from(row.bp)
        .join(row.person, row.person.branch_id == row.bp.branch_id)
        .join(row.mp, and_(row.mp.member_id == row.person.member_id, row.mp.campaign_key == key))
        .where(row.bp.step == branch_step, row.bp.campaign_key == key)
        # Those who will not pledge are not invited.
        .where(row.mp.state.not_in(("disqualified", "withdrawal_pending", "withdrawn", "exempt")))
    )
    return outbox.queue_from(session, "oath_ceremony", source, ctx.at)


def _move_branch_phase(
    session: Session, ctx: EvalContext, key: str, phase: str, lo: str, hi: str, cause: Cause
) -> tuple[str, int]:
    """Move the chunk's branches out of `phase`; the caller invites to the oath once their members have moved."""
    edge = branch_machine.advance_edge(phase)
    assert edge is not None
    return move_branches(session, ctx, edge, branches_between(lo, hi), cause)


def invite_to_oath(session: Session, ctx: EvalContext, key: str, phase: str, branch_step: str, moved: int) -> None:
    """Branches that entered pledge: their members are told of the ceremony — after the members' own moves (and
    lapses), so that whoever will not pledge is not invited."""
    if moved and phase == "consolidation":
        _oath_notices(session, ctx, key, branch_step)


def _move_member_phase(session: Session, ctx: EvalContext, key: str, phase: str, lo: str, hi: str, cause: Cause) -> int:
    edge = member_machine.advance_edge(phase)
    assert edge is not None
    step, moved = move_members(session, ctx, edge, in_branches(lo, hi), cause)
    if moved:
        _enter_phase_notices(session, ctx, key, step, edge.dest, in_branches(lo, hi))
    return moved


def fire_chunk(session: Session, key: str, deadline: Deadline, lo: str, hi: str, cause: Cause) -> int:
    """Decide one deadline for one chunk of branches; a chunk already done is skipped. Returns moves made."""
    if session.get(DoneChunk, (key, deadline.name, lo)) is not None:
        return 0
    ctx = context(session, key, deadline.due_at, cutoff=deadline.cutoff)
    moved = 0
    if deadline.name == START:
        branch_step, moved_b = move_branches(
            session, ctx, branch_machine.machine().edges("start", "enrolled")[0], branches_between(lo, hi), cause
        )
        step, moved_m = move_members(
            session, ctx, member_machine.machine().edges("start", "enrolled")[0], in_branches(lo, hi), cause
        )
        if moved_m:
            _enter_phase_notices(session, ctx, key, step, "study", in_branches(lo, hi))
        moved = moved_b + moved_m
    else:
        phase = deadline.name
        branch_step, branches_moved = _move_branch_phase(session, ctx, key, phase, lo, hi, cause)
        moved = branches_moved + _move_member_phase(session, ctx, key, phase, lo, hi, cause)
        label = deadline.cutoff.isoformat() if deadline.cutoff else ""
        if phase == "consolidation":
            lapse = member_machine.machine().edges("lapse", "consolidation")[0]
            step, lapsed = move_members(session, ctx, lapse, in_branches(lo, hi), cause)
            moved += lapsed
            if lapsed:
                queue_members_and_secretaries(
                    session,
                    ctx,
                    "withdrawal_pending",
                    lambda row: member_context(ctx, row, phase, label),
                    phase,
                    where=lambda row: row.mp.step == step,
                    scope=in_branches(lo, hi),
                )
        invite_to_oath(session, ctx, key, phase, branch_step, branches_moved)
        _stuck_notices(session, ctx, key, phase, label, lo, hi)
    session.execute(
        insert_ignoring_duplicates(session, DoneChunk).values(
            campaign_key=key, deadline=deadline.name, lo=lo, hi=hi, done_at=ctx.at, advanced=moved
        )
    )
    return moved


def _stuck_notices(session: Session, ctx: EvalContext, key: str, phase: str, label: str, lo: str, hi: str) -> None:
    edge = member_machine.advance_edge(phase)
    assert edge is not None
    queue_members_and_secretaries(
        session,
        ctx,
        "member_stuck",
        lambda row: member_context(ctx, row, phase, label, figures=figures_json("member", edge.guards, ctx, row)),
        phase,
        names=edge.guards,
        scope=in_branches(lo, hi),
        state=phase,
    )


def record_fired(session: Session, key: str, deadline: Deadline, at: dt.datetime, flow_run_id: str | None) -> None:
    session.execute(
        insert_ignoring_duplicates(session, FiredDeadline).values(
            campaign_key=key, name=deadline.name, due_at=deadline.due_at, fired_at=at, flow_run_id=flow_run_id
        )
    )


def stuck_pass_chunk(session: Session, key: str, lo: str, hi: str, at: dt.datetime, cause: Cause) -> int:
    """Move, as far as their conditions allow at T, whoever sits in a phase whose deadline has fired."""
    ctx = context(session, key, at)
    done = fired(session, key)
    moved = 0
    for phase in PHASES:
        if phase not in done:
            break
        branch_step, branches_moved = _move_branch_phase(session, ctx, key, phase, lo, hi, cause)
        moved += branches_moved + _move_member_phase(session, ctx, key, phase, lo, hi, cause)
        invite_to_oath(session, ctx, key, phase, branch_step, branches_moved)
    disqualify = member_machine.machine().edges("disqualify", "consolidation")[0]
    moved += move_members(session, ctx, disqualify, in_branches(lo, hi), cause)[1]
    return moved


def finalize_ratings(session: Session, key: str, at: dt.datetime) -> int:
    """Ratings final at T that no sweep has told yet: the member is told, once. (Finality itself is derived at any
    T by `rating_final`; `final_at` records the instant it became final, publicity's end, and that it was told.)"""
    step = uuid.uuid4().hex
    finished = changed(session.execute(
        update(Appraisal)
        .where(Appraisal.campaign_key == key, Appraisal.final_at.is_(None), rating_final(Appraisal, at))
        .values(final_at=Appraisal.publicity_ends_at, step=step)
        .execution_options(synchronize_session=False)
    ))
    if not finished:
        return 0
    a = aliased(Appraisal)
    source = (
        select(
            _key(a.member_id, "rating_final", key, a.member_id, a.rating).label("key"),
            literal(key).label("campaign_key"),
            a.member_id.label("recipient_id"),
            json_object(literal("rating"), a.rating).label("context"),
        )
        .where(a.step == step)
    )
    outbox.queue_from(session, "rating_final", source, at)
    return finished


def queue_time_notices(session: Session, key: str, at: dt.datetime) -> int:
    """What the clock alone causes at T: reminders, escalations and the daily digest."""
    return _reminders(session, key, at) + _escalations(session, key, at) + _digest(session, key, at)


def _reminder_due(session: Session, key: str, at: dt.datetime) -> tuple[Phase, int] | None:
    """The calendar phase at T and the latest reminder step due before its deadline (k days), if any: at most one
    reminder per recipient and deadline per sweep, and none once the deadline has passed."""
    campaign = session.get(Campaign, key)
    assert campaign is not None
    current = phase_at(session, key, at)
    if current not in PHASES:
        return None
    phase = session.get(Phase, (key, current))
    assert phase is not None
    deadline = as_utc(phase.deadline_at)
    steps = sorted(int(k) for k in campaign.reminders_days_before)
    due_steps = [k for k in steps if deadline - dt.timedelta(days=k) <= at < deadline]
    return (phase, due_steps[0]) if due_steps else None


def _reminders(session: Session, key: str, at: dt.datetime) -> int:
    due_now = _reminder_due(session, key, at)
    if due_now is None:
        return 0
    phase, k = due_now
    ctx = context(session, key, at)
    return _member_reminders(session, ctx, phase, k) + _branch_reminders(session, ctx, phase, k)


def _remindable(phase: str) -> tuple[str, ...]:
    """The member conditions of the phase's exit that a member can still act on before the deadline."""
    edge = member_machine.advance_edge(phase)
    assert edge is not None
    return tuple(n for n in edge.conditions if n not in NOT_REMINDED)


def reminder_occasion(phase: Phase, k: int) -> str:
    """A reminder's occasion names the deadline's date with the step, so each deadline gets each step once: a plan
    reload that moves a deadline not yet fired gets the new date its reminders again, an unmoved one never twice."""
    return f"{phase.name}:{phase.end.isoformat()}:{k}"


def _member_reminders(session: Session, ctx: EvalContext, phase: Phase, k: int) -> int:
    key, current = ctx.campaign_key, phase.name
    names = _remindable(current)
    if not names:
        return 0
    label = phase.end.isoformat()
    row = Row()
    rows = member_rows(row, ctx, names, state=current)  # joins the tallies the conditions below read
    behind = or_(*[not_(condition("member", n).ok(ctx, row)) for n in names])
    source = rows.where(behind).add_columns(
        _key(row.person.member_id, "deadline_reminder", key, row.person.member_id, reminder_occasion(phase, k)).label("key"),
        literal(key).label("campaign_key"),
        row.person.member_id.label("recipient_id"),
        # The member is the recipient: the context is the occasion and the figures as they stood at T.
        json_object(
            literal("phase"), literal(current), literal("deadline"), literal(label), literal("days_before"), literal(k),
            literal("figures"), figures_json("member", names, ctx, row),
        ).label("context"),
    )
    return outbox.queue_from(session, "deadline_reminder", source, ctx.at)


def _branch_reminders(session: Session, ctx: EvalContext, phase: Phase, k: int) -> int:
    """Each branch secretary of a branch in the phase: its unmet branch conditions and how many of its members
    are still short (the members the same sweep reminds), while the branch has either. One statement."""
    key, current = ctx.campaign_key, phase.name
    edge = branch_machine.advance_edge(current)
    assert edge is not None
    names = edge.guards
    member_names = _remindable(current)
    row = Row()
    query = branch_rows(row, ctx, names).where(row.bp.state == current)
    members_short: ColumnElement[Any] = literal(0)
    if member_names:
        m = Row(prefix="m_")
        short = (
            member_rows(m, ctx, member_names, state=current)
            .add_columns(m.person.branch_id.label("branch_id"), func.count().label("short"))
            .where(or_(*[not_(condition("member", n).ok(ctx, m)) for n in member_names]))
            .group_by(m.person.branch_id)
            .subquery("short")
        )
        query = query.outerjoin(short, short.c.branch_id == row.bp.branch_id)
        members_short = func.coalesce(short.c.short, 0)
    branch_behind = or_(false(), *[not_(condition("branch", n).ok(ctx, row)) for n in names])
    secretary = aliased(Person, name="sec")
    source = (
        query.join(secretary, and_(secretary.branch_id == row.bp.branch_id, secretary.role == "branch_secretary"))
        .where(or_(branch_behind, members_short > 0))
        .add_columns(
            _key(secretary.member_id, "branch_reminder", key, row.bp.branch_id, reminder_occasion(phase, k)).label("key"),
            literal(key).label("campaign_key"),
            secretary.member_id.label("recipient_id"),
            json_object(
                literal("branch_id"), row.bp.branch_id,
                literal("phase"), literal(current), literal("deadline"), literal(phase.end.isoformat()),
                literal("days_before"), literal(k), literal("members_short"), members_short,
                literal("figures"), figures_json("branch", names, ctx, row),
            ).label("context"),
        )
    )
    return outbox.queue_from(session, "branch_reminder", source, ctx.at)


def _escalations(session: Session, key: str, at: dt.datetime) -> int:
    campaign = session.get(Campaign, key)
    assert campaign is not None
    levels = {"specific": 0, **{k: int(v) for k, v in campaign.escalation_days.items()}}
    done = fired(session, key)
    ctx = context(session, key, at)
    count = 0
    for phase in PHASES:
        if phase not in done:
            continue
        record = session.get(Phase, (key, phase))
        assert record is not None
        days_stuck = (at - as_utc(record.deadline_at)).days
        edge = branch_machine.advance_edge(phase)
        assert edge is not None
        for level, after in levels.items():
            if days_stuck < after:
                continue
            row = Row()
            recipient = aliased(Person, name="r")
            if level == "specific":
                joined = and_(recipient.branch_id == row.bp.branch_id, recipient.role == "branch_secretary")
            else:
                joined = recipient.role == ESCALATION_ROLES[level]
            stuck_members = (
                select(func.count())
                .select_from(MemberProgress)
                .join(Person, Person.member_id == MemberProgress.member_id)
                .where(
                    MemberProgress.campaign_key == key,
                    MemberProgress.state == phase,
                    Person.branch_id == row.bp.branch_id,
                )
                .scalar_subquery()
            )
            source = (
                branch_rows(row, ctx, edge.guards)
                .add_columns(
                    _key(recipient.member_id, "branch_escalation", key, row.bp.branch_id, f"{phase}:{level}").label("key"),
                    literal(key).label("campaign_key"),
                    recipient.member_id.label("recipient_id"),
                    json_object(
                        literal("branch_id"), row.bp.branch_id,
                        literal("phase"), literal(phase), literal("deadline"), literal(record.end.isoformat()),
                        literal("level"), literal(level), literal("days_stuck"), literal(days_stuck),
                        literal("stuck_members"), stuck_members,
                        literal("figures"), figures_json("branch", edge.guards, ctx, row),
                    ).label("context"),
                )
                .join(recipient, joined)
                .where(row.bp.state == phase)
            )
            count += outbox.queue_from(session, "branch_escalation", source, at)
    return count


def _digest(session: Session, key: str, at: dt.datetime) -> int:
    campaign = session.get(Campaign, key)
    assert campaign is not None
    day = local_date(at, campaign.timezone).isoformat()
    directors = session.scalars(select(Person.member_id).where(Person.role == "office_director")).all()
    if not directors:
        return 0
    facts = summary(session, key, at)
    passed = passed_phases(session, key, at)
    stuck_in_branch = (
        select(Person.branch_id, func.count().label("stuck"))
        .join(MemberProgress, MemberProgress.member_id == Person.member_id)
        .where(MemberProgress.campaign_key == key, MemberProgress.state.in_(passed))
        .group_by(Person.branch_id)
        .subquery()
    )
    # The most lagging: stuck branches and those with the most stuck members, ten at most.
    lagging = [
        {"branch_id": b, "state": s, "stuck_members": int(n)}
        for b, s, n in session.execute(
            select(BranchProgress.branch_id, BranchProgress.state, func.coalesce(stuck_in_branch.c.stuck, 0))
            .outerjoin(stuck_in_branch, stuck_in_branch.c.branch_id == BranchProgress.branch_id)
            .where(
                BranchProgress.campaign_key == key,
                or_(BranchProgress.state.in_(passed), stuck_in_branch.c.stuck > 0),
            )
            .order_by(BranchProgress.state.in_(passed).desc(), func.coalesce(stuck_in_branch.c.stuck, 0).desc(), BranchProgress.branch_id)
            .limit(10)
        )
    ]
    for director in directors:
        outbox.queue(
            session,
            event="daily_digest",
            campaign=key,
            recipient_id=director,
            subject=key,
            occasion=day,
            context={
                "day": day,
                "phase": facts["phase"],
                "members": facts["members"],
                "branches": facts["branches"],
                "stuck": facts["stuck"],
                "lagging": lagging,
            },
            at=at,
        )
    return len(directors)


def count_advanced(session: Session, sweep_id: str) -> tuple[int, int]:
    """Members and branches that moved forward at least once in this sweep."""
    forward = and_(TransitionLog.sweep_id == sweep_id, TransitionLog.trigger.in_(("start", "advance")))
    members = session.scalar(
        select(func.count(distinct(TransitionLog.member_id))).where(forward, TransitionLog.member_id.is_not(None))
    )
    branches = session.scalar(
        select(func.count(distinct(TransitionLog.branch_id))).where(forward, TransitionLog.member_id.is_(None))
    )
    return members or 0, branches or 0


@dataclass
class SweepPlan:
    """What a sweep at T will do: the deadlines to fire and the chunks each is cut into."""

    key: str
    at: dt.datetime
    due: list[Deadline]
    chunks: list[tuple[str, str]]
    sweep_id: str = field(default_factory=lambda: uuid.uuid4().hex)


def plan_sweep(session: Session, key: str, at: dt.datetime, branches_per_chunk: int) -> SweepPlan:
    # Fresh statistics before set-based statements. PostgreSQL: a planner that believes these tables empty picks
    # nested loops over correlated subplans (seen: 40 s instead of 1 s after bulk changes). SQLite: without them
    # a chunk's members are found through the state index — every member in the phase, once per chunk — rather
    # than through the chunk's branches (quadratic: 100 chunks × 1M rows); the four tables take ~0.3 s at 1M.
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("ANALYZE member_progress, branch_progress, member_fact, branch_fact, appraisal, person, notice"))
    else:
        for table in ("member_progress", "branch_progress", "appraisal", "person"):
            session.execute(text(f"ANALYZE {table}"))
    size = chunk_size_for(session, key, branches_per_chunk)
    return SweepPlan(key, at, due(session, key, at), chunks(session, key, size))


def run_units(plan: SweepPlan) -> Iterator[tuple[str, Deadline | None, tuple[str, str] | None]]:
    """The sweep as a sequence of units: ("fire", deadline, chunk), ("fired", deadline, None), ("stuck", None, chunk),
    ("finish", None, None). Each unit is one transaction; the CLI runs them in a loop, Prefect as tasks."""
    for deadline in plan.due:
        for chunk in plan.chunks:
            yield "fire", deadline, chunk
        yield "fired", deadline, None
    for chunk in plan.chunks:
        yield "stuck", None, chunk
    yield "finish", None, None


def run_unit(
    session: Session, plan: SweepPlan, unit: tuple[str, Deadline | None, tuple[str, str] | None], cause: Cause
) -> None:
    kind, deadline, chunk = unit
    # A chunk seals on a lane of its own, so parallel chunks never queue on the main chain; the finish unit merges
    # the lanes into it (states/audit.py). The lane is named from the plan alone: chunks may run in other processes.
    audit.on_lane(session, audit.lane_id(plan.key, plan.sweep_id, chunk[0]) if chunk is not None else None)
    if kind == "fire":
        assert deadline is not None and chunk is not None
        fire_chunk(session, plan.key, deadline, chunk[0], chunk[1], cause)
    elif kind == "fired":
        assert deadline is not None
        record_fired(session, plan.key, deadline, plan.at, cause.flow_run_id)
    elif kind == "stuck":
        assert chunk is not None
        stuck_pass_chunk(session, plan.key, chunk[0], chunk[1], plan.at, cause)
    else:
        finalize_ratings(session, plan.key, plan.at)
        queue_time_notices(session, plan.key, plan.at)
        counts.fold(session, plan.key)
        audit.merge_when_sealing(session, plan.key)


def report(session: Session, plan: SweepPlan) -> SweepReport:
    members, branches = count_advanced(session, plan.sweep_id)
    facts = summary(session, plan.key, plan.at)
    return SweepReport(
        fired=[d.name for d in plan.due],
        advanced_members=members,
        advanced_branches=branches,
        stuck_members=facts["stuck"]["members"],
        stuck_branches=facts["stuck"]["branches"],
    )


def sweep(
    engine: Engine,
    key: str,
    at: dt.datetime,
    *,
    seal_key: bytes,
    actor: str = "system",
    dry_run: bool = False,
    flow_run_id: str | None = None,
    branches_per_chunk: int = 200,
    progress: Callable[[int, int], None] | None = None,
) -> SweepReport:
    """Run a whole sweep: one transaction per unit, each sealed under `seal_key`, or, for a dry run, one transaction
    rolled back at the end. Refused (SweepRunning) while another sweep of the campaign runs (`states.running`)."""
    with running.one_sweep(engine, key), Session(engine, expire_on_commit=False) as session:
        with session.begin():
            plan = plan_sweep(session, key, at, branches_per_chunk)
        cause = Cause(cause="sweep", actor=actor, flow_run_id=flow_run_id, sweep_id=plan.sweep_id)
        units = list(run_units(plan))
        if dry_run:
            with session.begin():
                for unit in units:
                    run_unit(session, plan, unit, cause)
                result = report(session, plan)
                session.rollback()
            return result
        for index, unit in enumerate(units, 1):
            with session.begin():
                run_unit(session, plan, unit, cause)
                audit.seal(session, at, seal_key)
            if progress:
                progress(index, len(units))
        with session.begin():
            return report(session, plan)
