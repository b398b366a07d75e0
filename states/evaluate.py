"""Evaluating conditions: for a whole chunk in one statement, or for one subject with its figures."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, not_, select, true
from sqlalchemy.orm import Session

from states import branch as branch_machine
from states import member as member_machine
from states.clock import local_date
from states.conditions import EvalContext, Row, Scope, condition
from states.errors import NotFound
from states.machine import Transition
from states.models import Campaign, Phase


@dataclass(frozen=True)
class Result:
    """One condition of one subject: its figures and whether it holds."""

    condition: str
    have: Any
    need: Any
    ok: bool

    def as_dict(self) -> dict[str, Any]:
        return {"condition": self.condition, "have": self.have, "need": self.need}


def context(session: Session, key: str, at: dt.datetime, cutoff: dt.date | None = None) -> EvalContext:
    """The evaluation context of campaign `key` at instant `at` (evidence up to `cutoff`, default T's date)."""
    campaign = session.get(Campaign, key)
    if campaign is None:
        raise NotFound(f"unknown campaign {key!r}")
    phases = session.scalars(select(Phase).where(Phase.campaign_key == key).order_by(Phase.seq)).all()
    return EvalContext(
        campaign_key=key,
        study_hours=campaign.study_hours,
        concentrated_days=campaign.concentrated_days,
        window_start=phases[0].start,
        window_end=phases[-1].end,
        cutoff=cutoff if cutoff is not None else local_date(at, campaign.timezone),
        at=at,
    )


def member_rows(row: Row, ctx: EvalContext) -> Select[Any]:
    """The FROM of every member evaluation: progress, person, the branch's progress and the appraisal."""
    mp, p, bp, a = row.mp, row.person, row.bp, row.appraisal
    return (
        select()
        .select_from(mp)
        .join(p, p.member_id == mp.member_id)
        .outerjoin(bp, and_(bp.campaign_key == mp.campaign_key, bp.branch_id == p.branch_id))
        .outerjoin(a, and_(a.campaign_key == mp.campaign_key, a.member_id == mp.member_id))
        .where(mp.campaign_key == ctx.campaign_key)
    )


def branch_rows(row: Row, ctx: EvalContext) -> Select[Any]:
    return select().select_from(row.bp).where(row.bp.campaign_key == ctx.campaign_key)


def passes(scope: Scope, edge: Transition, ctx: EvalContext, row: Row) -> ColumnElement[bool]:
    """True for the rows where every condition of `edge` holds (and none of its `unless`)."""
    clauses = [condition(scope, name).ok(ctx, row) for name in edge.conditions]
    clauses += [not_(condition(scope, name).ok(ctx, row)) for name in edge.unless]
    return and_(true(), *clauses)


def figures(scope: Scope, names: tuple[str, ...], ctx: EvalContext, row: Row) -> list[ColumnElement[Any]]:
    """have, need and ok of each named condition, as labelled columns."""
    columns: list[ColumnElement[Any]] = []
    for name in names:
        cond = condition(scope, name)
        columns += [
            cond.have(ctx, row).label(f"{name}__have"),
            cond.need(ctx, row).label(f"{name}__need"),
            cond.ok(ctx, row).label(f"{name}__ok"),
        ]
    return columns


def _plain(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return value


def results_from(mapping: Any, names: tuple[str, ...]) -> list[Result]:
    return [
        Result(
            name,
            _plain(mapping[f"{name}__have"]),
            _plain(mapping[f"{name}__need"]),
            bool(mapping[f"{name}__ok"]),
        )
        for name in names
    ]


def evaluate_member(session: Session, ctx: EvalContext, member_id: str, edge: Transition) -> list[Result]:
    """The conditions of `edge` for one member, through the very expressions the sweep uses."""
    row = Row()
    names = edge.guards
    query = member_rows(row, ctx).add_columns(*figures("member", names, ctx, row))
    mapping = session.execute(query.where(row.mp.member_id == member_id)).mappings().first()
    if mapping is None:
        raise NotFound(f"member {member_id!r} takes no part in campaign {ctx.campaign_key!r}")
    results = results_from(mapping, names)
    # `unless` conditions hold when their measure fails.
    return [r if r.condition in edge.conditions else Result(r.condition, r.have, r.need, not r.ok) for r in results]


def evaluate_branch(session: Session, ctx: EvalContext, branch_id: str, edge: Transition) -> list[Result]:
    row = Row()
    names = edge.guards
    query = branch_rows(row, ctx).add_columns(*figures("branch", names, ctx, row))
    mapping = session.execute(query.where(row.bp.branch_id == branch_id)).mappings().first()
    if mapping is None:
        raise NotFound(f"branch {branch_id!r} takes no part in campaign {ctx.campaign_key!r}")
    return results_from(mapping, names)


def member_edge(state: str) -> Transition | None:
    return member_machine.advance_edge(state)


def branch_edge(state: str) -> Transition | None:
    return branch_machine.advance_edge(state)
