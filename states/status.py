"""Where things stand: campaign counts, one member's state and unmet conditions, the phase of an instant."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session

from states import branch as branch_machine
from states import member as member_machine
from states.clock import as_utc
from states.errors import NotFound
from states.evaluate import context, evaluate_branch, evaluate_member, final_ratings
from states.models import Appraisal, BranchProgress, Campaign, Evidence, MemberProgress, Person, Phase


def phases(session: Session, key: str) -> list[Phase]:
    found = list(session.scalars(select(Phase).where(Phase.campaign_key == key).order_by(Phase.seq)))
    if not found:
        raise NotFound(f"unknown campaign {key!r}")
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
        raise NotFound(f"unknown campaign {key!r}")
    passed = passed_phases(session, key, at)
    members = dict(
        session.execute(
            select(MemberProgress.state, func.count())
            .where(MemberProgress.campaign_key == key)
            .group_by(MemberProgress.state)
        ).all()
    )
    branches = dict(
        session.execute(
            select(BranchProgress.state, func.count())
            .where(BranchProgress.campaign_key == key)
            .group_by(BranchProgress.state)
        ).all()
    )
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
        raise NotFound(f"unknown member {member_id!r}")
    if progress is None:
        raise NotFound(f"member {member_id!r} takes no part in campaign {key!r}")
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
        raise NotFound(f"branch {branch_id!r} takes no part in campaign {key!r}")
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
