"""Who is stuck at T and on what, with figures, branch by branch: one statement per chunk of branches and phase."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from states import branch as branch_machine
from states import member as member_machine
from states.clock import as_utc
from states.conditions import EvalContext, Row, names
from states.errors import BadInput, NotFound
from states.evaluate import (
    Result,
    branch_rows,
    branches_between,
    context,
    edge_results,
    figures,
    in_branches,
    member_rows,
)
from states.machine import Transition
from states.models import Branch, BranchProgress, Campaign
from states.status import passed_phases
from states.sweep import chunk_size_for, chunks

DISQUALIFY: Transition = next(t for t in member_machine.TRANSITIONS if t.trigger == "disqualify")


def known_conditions() -> tuple[str, ...]:
    """Every condition name a member or a branch can be stuck on."""
    return tuple(dict.fromkeys((*names("member"), *names("branch"))))


def stuck_list(
    session: Session,
    key: str,
    at: dt.datetime,
    *,
    branch: str | None = None,
    condition: str | None = None,
    branches_per_chunk: int = 200,
) -> list[dict[str, Any]]:
    """Every branch and member in a phase whose deadline has passed at T, with the unmet conditions of its next
    step as `explain` gives them at T; branch by branch (the branch first, then its members by id).

    `branch` keeps one branch and its members; `condition` keeps those on whom that condition is unmet. Evaluated
    per chunk of branches with the sweep's set-wise expressions: one statement per chunk and passed phase."""
    if session.get(Campaign, key) is None:
        raise NotFound(zh=f"没有活动 {key!r}", en=f"unknown campaign {key!r}")
    if condition is not None and condition not in known_conditions():
        known = ", ".join(known_conditions())
        raise BadInput(zh=f"没有条件 {condition!r}；可用的条件：{known}", en=f"unknown condition {condition!r}; one of: {known}")
    passed = passed_phases(session, key, at)
    if branch is not None:
        if session.get(BranchProgress, (key, branch)) is None:
            raise NotFound(zh=f"党支部 {branch!r} 未参加活动 {key!r}", en=f"branch {branch!r} takes no part in campaign {key!r}")
        ranges = [(branch, branch)]
    else:
        ranges = chunks(session, key, chunk_size_for(session, key, branches_per_chunk))
    if not passed:
        return []
    ctx = context(session, key, at)
    found: list[dict[str, Any]] = []
    for lo, hi in ranges:
        chunk = _stuck_branches(session, ctx, passed, lo, hi) + _stuck_members(session, ctx, passed, lo, hi)
        chunk.sort(key=lambda e: (e["branch_id"], e["member_id"] is not None, e["member_id"] or ""))
        found += chunk
    if condition is not None:
        found = [e for e in found if any(u["condition"] == condition for u in e["unmet"])]
    _name_branches(session, found)
    return found


def _unmet(results: list[Result]) -> list[dict[str, Any]]:
    return [r.as_dict() for r in results if not r.ok]


def _stuck_branches(session: Session, ctx: EvalContext, passed: list[str], lo: str, hi: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for phase in passed:
        edge = branch_machine.advance_edge(phase)
        if edge is None:
            continue
        row = Row()
        query = (
            branch_rows(row, ctx, edge.guards, branches_between(lo, hi))
            .where(row.bp.state == phase)
            .add_columns(
                row.bp.branch_id.label("subject_branch"),
                row.bp.state_since.label("subject_since"),
                *figures("branch", edge.guards, ctx, row),
            )
        )
        for mapping in session.execute(query).mappings():
            found.append({
                "member_id": None,
                "name": None,
                "branch_id": mapping["subject_branch"],
                "state": phase,
                "since": as_utc(mapping["subject_since"]).isoformat(),
                "unmet": _unmet(edge_results(mapping, edge)),
            })
    return found


def _stuck_members(session: Session, ctx: EvalContext, passed: list[str], lo: str, hi: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for phase in passed:
        edge = member_machine.advance_edge(phase)
        if edge is None:
            continue
        # A member rated unqualified leaves consolidation by `disqualify`, not `advance` (as `explain` says):
        # both edges' figures come from the one statement, and the rating picks the edge.
        guards = tuple(dict.fromkeys(edge.guards + (DISQUALIFY.guards if phase == DISQUALIFY.source else ())))
        row = Row()
        query = member_rows(row, ctx, guards, in_branches(lo, hi), state=phase).add_columns(
            row.mp.member_id.label("subject_member"),
            row.person.name.label("subject_name"),
            row.person.branch_id.label("subject_branch"),
            row.mp.state_since.label("subject_since"),
            row.appraisal.rating.label("subject_rating"),
            *figures("member", guards, ctx, row),
        )
        for mapping in session.execute(query).mappings():
            taken = DISQUALIFY if phase == DISQUALIFY.source and mapping["subject_rating"] == "unqualified" else edge
            found.append({
                "member_id": mapping["subject_member"],
                "name": mapping["subject_name"],
                "branch_id": mapping["subject_branch"],
                "state": phase,
                "since": as_utc(mapping["subject_since"]).isoformat(),
                "unmet": _unmet(edge_results(mapping, taken)),
            })
    return found


def _name_branches(session: Session, found: list[dict[str, Any]]) -> None:
    """Every entry carries its branch's name (`branch_name`: a list read branch by branch names each), a branch
    entry as its `name` too (members carry their own): one lookup for the whole list."""
    wanted = sorted({e["branch_id"] for e in found})
    by_id: dict[str, str] = {}
    for start in range(0, len(wanted), 500):
        part = wanted[start : start + 500]
        by_id.update((b, n) for b, n in session.execute(select(Branch.branch_id, Branch.name).where(Branch.branch_id.in_(part))))
    for entry in found:
        entry["branch_name"] = by_id.get(entry["branch_id"])
        if entry["member_id"] is None:
            entry["name"] = entry["branch_name"]
