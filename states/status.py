"""Where things stand: campaign counts, one member's state and unmet conditions, the phase of an instant."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import ColumnElement, and_, func, not_, or_, select
from sqlalchemy.orm import Session

from states import authority, counts
from states import branch as branch_machine
from states import member as member_machine
from states.clock import as_utc
from states.conditions import EvalContext, condition
from states.errors import NotFound
from states.evaluate import context, evaluate_branch, evaluate_member, final_ratings
from states.machine import PHASES
from states.models import Appraisal, BranchProgress, Campaign, Evidence, MemberProgress, Person, Phase


def phases(session: Session, key: str) -> list[Phase]:
    found = list(session.scalars(select(Phase).where(Phase.campaign_key == key).order_by(Phase.seq)))
    if not found:
        raise NotFound(zh=f"没有活动 {key!r}", en=f"unknown campaign {key!r}")
    return found


def phase_at(session: Session, key: str, at: dt.datetime) -> str:
    """The phase whose window holds T: "not_started" before the first, "ended" after the last."""
    all_phases = phases(session, key)
    if at < as_utc(all_phases[0].starts_at):
        return "not_started"
    for phase in all_phases:
        if at < as_utc(phase.deadline_at):
            return phase.name
    return "ended"


def passed_phases(session: Session, key: str, at: dt.datetime) -> list[str]:
    """Phases whose deadline has passed at T: whoever is still in one of them is stuck."""
    return [p.name for p in phases(session, key) if as_utc(p.deadline_at) <= at]


def summary(session: Session, key: str, at: dt.datetime) -> dict[str, Any]:
    """`status CAMPAIGN --json`: counts per state and the stuck, participants only."""
    if session.get(Campaign, key) is None:
        raise NotFound(zh=f"没有活动 {key!r}", en=f"unknown campaign {key!r}")
    passed = passed_phases(session, key, at)
    members = counts.counts(session, key, "member")  # kept as rows move: a few rows read at any size
    branches = counts.counts(session, key, "branch")
    return {
        "campaign": key,
        "phase": phase_at(session, key, at),
        "members": {s: members[s] for s in member_machine.STATES if s in members},
        "branches": {s: branches[s] for s in branch_machine.STATES if s in branches},
        "stuck": {
            "members": sum(members.get(p, 0) for p in passed),
            "branches": sum(branches.get(p, 0) for p in passed),
        },
    }


def branch_table(session: Session, key: str, at: dt.datetime) -> list[dict[str, Any]]:
    """One row per branch: its state, its members per state, its stuck members (the progress artifact)."""
    passed = set(passed_phases(session, key, at))
    rows: dict[str, dict[str, Any]] = {}
    for branch_id, branch_state in session.execute(
        select(BranchProgress.branch_id, BranchProgress.state)
        .where(BranchProgress.campaign_key == key)
        .order_by(BranchProgress.branch_id)
    ):
        rows[branch_id] = {
            "branch_id": branch_id, "state": branch_state, "stuck": branch_state in passed, "members": {}, "stuck_members": 0
        }
    counts = session.execute(
        select(Person.branch_id, MemberProgress.state, func.count())
        .join(Person, Person.member_id == MemberProgress.member_id)
        .where(MemberProgress.campaign_key == key)
        .group_by(Person.branch_id, MemberProgress.state)
    )
    for member_branch, member_state, count in counts:
        row = rows.get(str(member_branch))
        if row is None:
            continue
        row["members"][member_state] = count
        if member_state in passed:
            row["stuck_members"] += count
    return list(rows.values())


def member_view(session: Session, key: str, member_id: str, at: dt.datetime) -> dict[str, Any]:
    """`status --member` / `explain`: the state, whether stuck, and every unmet condition of the next step."""
    progress = session.get(MemberProgress, (key, member_id))
    person = session.get(Person, member_id)
    if person is None:
        raise NotFound(zh=f"没有党员 {member_id!r}", en=f"unknown member {member_id!r}")
    if progress is None:
        raise NotFound(zh=f"党员 {member_id!r} 未参加活动 {key!r}", en=f"member {member_id!r} takes no part in campaign {key!r}")
    ctx = context(session, key, at)
    passed = passed_phases(session, key, at)
    view: dict[str, Any] = {
        "campaign": key,
        "member_id": member_id,
        "name": person.name,
        "branch_id": person.branch_id,
        "state": progress.state,
        "since": as_utc(progress.state_since).isoformat(),
        "stuck": progress.state in passed,
        "unmet": [],
        "next": None,
    }
    edge = member_machine.advance_edge(progress.state)
    if progress.state == "consolidation":
        appraisal = session.get(Appraisal, (key, member_id))
        if appraisal is not None and appraisal.rating == "unqualified":
            edge = next(t for t in member_machine.TRANSITIONS if t.trigger == "disqualify")
    if progress.state in ("exempt", "referred"):
        view["prior_state"] = progress.prior_state
    if edge is not None:
        results = evaluate_member(session, ctx, member_id, edge)
        view["next"] = edge.dest
        view["unmet"] = [r.as_dict() for r in results if not r.ok]
        view["conditions"] = [{**r.as_dict(), "ok": r.ok} for r in results]
    appraisal = session.get(Appraisal, (key, member_id))
    if appraisal is not None:
        view["appraisal"] = {
            "rating": appraisal.rating,
            "approved": appraisal.approved_at is not None,
            "publicity_ends": as_utc(appraisal.publicity_ends_at).isoformat() if appraisal.publicity_ends_at else None,
            "objection_pending": appraisal.objection_pending,
            "final": member_id in final_ratings(session, key, [member_id], at),
            "excellent": appraisal.excellent,
            "withdrawal_confirmed": appraisal.withdrawal_confirmed_at is not None,
        }
    if progress.state == "disqualified":
        has_disposition = session.scalar(
            select(func.count()).select_from(Evidence).where(
                and_(Evidence.member_id == member_id, Evidence.kind == "disposition")
            )
        )
        view["disposition"] = "recorded" if has_disposition else "pending"
    return view


def branch_view(session: Session, key: str, branch_id: str, at: dt.datetime) -> dict[str, Any]:
    progress = session.get(BranchProgress, (key, branch_id))
    if progress is None:
        raise NotFound(zh=f"党支部 {branch_id!r} 未参加活动 {key!r}", en=f"branch {branch_id!r} takes no part in campaign {key!r}")
    ctx = context(session, key, at)
    passed = passed_phases(session, key, at)
    view: dict[str, Any] = {
        "campaign": key,
        "branch_id": branch_id,
        "state": progress.state,
        "stuck": progress.state in passed,
        "unmet": [],
    }
    edge = branch_machine.advance_edge(progress.state)
    if edge is not None:
        results = evaluate_branch(session, ctx, branch_id, edge)
        view["next"] = edge.dest
        view["unmet"] = [r.as_dict() for r in results if not r.ok]
    table = [row for row in branch_table(session, key, at) if row["branch_id"] == branch_id]
    view["members"] = table[0]["members"] if table else {}
    view["stuck_members"] = table[0]["stuck_members"] if table else 0
    return view


def explain_view(session: Session, key: str, member_id: str, at: dt.datetime) -> dict[str, Any]:
    """`explain`: `member_view`, plus why some of the member's evidence does not count at T (`uncounted`) and,
    out of a side state, the next steps and who takes them (`next_steps`)."""
    view = member_view(session, key, member_id, at)
    ctx = context(session, key, at)
    view["uncounted"] = uncounted(session, ctx, member_id, view["state"], [u["condition"] for u in view["unmet"]])
    progress = session.get(MemberProgress, (key, member_id))
    person = session.get(Person, member_id)
    assert progress is not None and person is not None  # member_view found both
    view["next_steps"] = next_steps(session, key, person, progress, view.get("disposition"))
    return view


UNCOUNTED_ORDER = ("before_window", "after_phase", "after_at", "after_window")
"""Why evidence does not count, in the order of the calendar."""


def uncounted(
    session: Session, ctx: EvalContext, member_id: str, state: str, conditions: list[str]
) -> list[dict[str, Any]]:
    """The member's evidence for the unmet `conditions` that does not count at T, grouped by why: dated outside the
    campaign's window (never counts), after the end of the member's phase while its deadline is still ahead (the
    deadline will not count it), or after T's date (counts from its date on). `day` is the day that decides."""
    kinds_of: dict[str, tuple[str, ...]] = {}
    for name in conditions:
        tally = condition("member", name).tally
        if tally is not None:
            kinds_of[name] = tally.kinds
    if not kinds_of:
        return []
    wanted = sorted({kind for kinds in kinds_of.values() for kind in kinds})
    rows = session.execute(
        select(Evidence.kind, Evidence.date, func.count())
        .where(
            Evidence.member_id == member_id,
            Evidence.kind.in_(wanted),
            not_(Evidence.date.between(ctx.window_start, ctx.last_day)),
        )
        .group_by(Evidence.kind, Evidence.date)
    ).all()
    if not rows:
        return []
    phase_end: dt.date | None = None
    if state in PHASES:
        phase = session.get(Phase, (ctx.campaign_key, state))
        if phase is not None and ctx.at < as_utc(phase.deadline_at):
            phase_end = phase.end
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for name, kinds in kinds_of.items():
        for kind, day, count in rows:
            if kind not in kinds:
                continue
            if day < ctx.window_start:
                reason, decides = "before_window", ctx.window_start
            elif day > ctx.window_end:
                reason, decides = "after_window", ctx.window_end
            elif phase_end is not None and day > phase_end:
                reason, decides = "after_phase", phase_end
            else:
                reason, decides = "after_at", ctx.cutoff
            entry = found.setdefault(
                (name, reason), {"condition": name, "reason": reason, "count": 0, "day": decides.isoformat()}
            )
            entry["count"] += count
    return sorted(found.values(), key=lambda e: (e["condition"], UNCOUNTED_ORDER.index(e["reason"])))


def next_steps(
    session: Session, key: str, person: Person, progress: MemberProgress, disposition: str | None = None
) -> list[dict[str, Any]]:
    """Out of a side state (or before the start): the acts that move the member on, from the member machine's
    transitions, each with its destination and who takes it (`authority.MEMBER_ACTS`), by name where the roster
    names them. A member on the main path moves by its conditions (`unmet`), a terminal state by nothing."""
    state = progress.state
    acts: list[tuple[str, str | None]] = []
    if state == "enrolled":
        acts = [(t.trigger, t.dest) for t in member_machine.TRANSITIONS if t.source == state and t.trigger == "start"]
    elif state in ("exempt", "referred"):
        back = f"came_from_{progress.prior_state}"
        acts = [(t.trigger, t.dest) for t in member_machine.TRANSITIONS if t.source == state and back in t.conditions]
    elif state == "withdrawal_pending":
        appraisal = session.get(Appraisal, (key, person.member_id))
        confirmed = appraisal is not None and appraisal.withdrawal_confirmed_at is not None
        for t in member_machine.TRANSITIONS:
            if t.source != state or t.trigger not in ("withdraw", "accept_late"):
                continue
            if t.trigger == "withdraw":
                # Its conditions are acts in order: the branch confirms, then the upper committee approves.
                acts.append((t.conditions[1] if confirmed else t.conditions[0], t.dest))
            else:
                acts.append((t.trigger, t.dest))
    elif state == "disqualified" and disposition == "pending":
        acts = [("disposition", None)]
    steps: list[dict[str, Any]] = []
    for act, dest in acts:
        roles = authority.acting_roles(act)
        steps.append({"act": act, "to": dest, "by": list(roles), "people": _people(session, person, roles)})
    return steps


def _people(session: Session, member: Person, roles: tuple[str, ...]) -> list[dict[str, str]]:
    """The roster's people in `roles` who may act on `member`: its own branch's secretary, and the leaders."""
    if not roles:
        return []
    others = [r for r in roles if r != "branch_secretary"]
    where: list[ColumnElement[bool]] = [Person.role.in_(others)] if others else []
    if "branch_secretary" in roles and member.branch_id is not None:
        where.append(and_(Person.role == "branch_secretary", Person.branch_id == member.branch_id))
    if not where:
        return []
    order = {role: index for index, role in enumerate(roles)}
    found = list(session.execute(select(Person.member_id, Person.name, Person.role).where(or_(*where))).all())
    found.sort(key=lambda p: (order.get(p.role, len(order)), p.member_id))
    return [{"member_id": p.member_id, "name": p.name, "role": p.role} for p in found]


def campaign_list(session: Session, at: dt.datetime) -> list[dict[str, Any]]:
    """`campaigns --json`: every campaign by key, its title, the phase whose window holds T, its participants."""
    counts: dict[str, int] = {
        key: n
        for key, n in session.execute(
            select(MemberProgress.campaign_key, func.count()).group_by(MemberProgress.campaign_key)
        )
    }
    return [
        {"campaign": key, "title": title, "phase": phase_at(session, key, at), "members": counts.get(key, 0)}
        for key, title in session.execute(select(Campaign.key, Campaign.title).order_by(Campaign.key))
    ]
