"""Evaluating conditions: for a whole chunk in one statement, or for one subject with its figures."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, not_, select, true
from sqlalchemy.orm import Session

from states import branch as branch_machine
from states import facts
from states import member as member_machine
from states.clock import local_date
from states.conditions import EvalContext, Row, Scope, condition, rating_final, tallies, windows
from states.errors import NotFound
from states.facts import Subjects
from states.machine import Transition
from states.models import Appraisal, Campaign, Phase


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
        raise NotFound(zh=f"没有活动 {key!r}", en=f"unknown campaign {key!r}")
    phases = session.scalars(select(Phase).where(Phase.campaign_key == key).order_by(Phase.seq)).all()
    return EvalContext(
        campaign_key=key,
        study_hours=campaign.study_hours,
        concentrated_days=campaign.concentrated_days,
        window_start=phases[0].start,
        window_end=phases[-1].end,
        cutoff=cutoff if cutoff is not None else local_date(at, campaign.timezone),
        at=at,
        windows=windows([(p.start, p.end) for p in phases]),
    )


# -- scopes: which subjects a statement reads (a SQL filter over the row's aliases, never a Python loop) ---------

MemberScope = Callable[[Row], ColumnElement[bool]]
"""Members, by their person row alone (so the same filter also bounds the evidence their tallies read)."""
BranchScope = Callable[[Row], ColumnElement[bool]]
"""Branches, by their progress row."""


def in_branches(lo: str, hi: str) -> MemberScope:
    return lambda row: row.person.branch_id.between(lo, hi)


def of_members(ids: Sequence[str]) -> MemberScope:
    return lambda row: row.person.member_id.in_(ids)


def of_branch_ids(ids: Sequence[str]) -> MemberScope:
    return lambda row: row.person.branch_id.in_(ids)


def branches_between(lo: str, hi: str) -> BranchScope:
    return lambda row: row.bp.branch_id.between(lo, hi)


def branches_of(ids: Sequence[str]) -> BranchScope:
    return lambda row: row.bp.branch_id.in_(ids)


# -- the rows conditions are evaluated on ------------------------------------------------------------------------


def member_rows(
    row: Row,
    ctx: EvalContext,
    names: Iterable[str] = (),
    scope: MemberScope | None = None,
    state: str | None = None,
) -> Select[Any]:
    """The FROM of every member evaluation: progress, person, the branch's progress, the appraisal and — for the
    tallies the conditions `names` read — one GROUP BY over the evidence of exactly the members selected: those
    of `scope` (None: all) in `state` (None: any)."""
    mp, p, bp, a = row.mp, row.person, row.bp, row.appraisal
    query = (
        select()
        .select_from(mp)
        .join(p, p.member_id == mp.member_id)
        .outerjoin(bp, and_(bp.campaign_key == mp.campaign_key, bp.branch_id == p.branch_id))
        .outerjoin(a, and_(a.campaign_key == mp.campaign_key, a.member_id == mp.member_id))
        .where(mp.campaign_key == ctx.campaign_key)
    )
    if scope is not None:
        query = query.where(scope(row))
    if state is not None:
        query = query.where(mp.state == state)
    needed = tallies("member", names)
    if needed:
        subjects: Subjects | None = None
        if scope is not None or state is not None:
            inner = Row(prefix="s_")
            ids = (
                select(inner.mp.member_id)
                .join(inner.person, inner.person.member_id == inner.mp.member_id)
                .where(inner.mp.campaign_key == ctx.campaign_key)
            )
            if scope is not None:
                ids = ids.where(scope(inner))
            if state is not None:
                ids = ids.where(inner.mp.state == state)
            subjects = _among(ids)
        row.facts = facts.read(ctx, "member", needed, subjects)
        query = query.outerjoin(row.facts, row.facts.c.subject == mp.member_id)
    return query


def _among(ids: Select[Any]) -> Subjects:
    return lambda subject: subject.in_(ids)


def branch_rows(
    row: Row, ctx: EvalContext, names: Iterable[str] = (), scope: BranchScope | None = None
) -> Select[Any]:
    """The FROM of every branch evaluation, with the tallies of the branches in `scope` as for members."""
    query = select().select_from(row.bp).where(row.bp.campaign_key == ctx.campaign_key)
    if scope is not None:
        query = query.where(scope(row))
    needed = tallies("branch", names)
    if needed:
        inner = Row(prefix="s_")
        subjects = None if scope is None else _among(
            select(inner.bp.branch_id).where(inner.bp.campaign_key == ctx.campaign_key, scope(inner))
        )
        row.facts = facts.read(ctx, "branch", needed, subjects)
        query = query.outerjoin(row.facts, row.facts.c.subject == row.bp.branch_id)
    return query


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
    query = member_rows(row, ctx, names, of_members([member_id])).add_columns(*figures("member", names, ctx, row))
    mapping = session.execute(query).mappings().first()
    if mapping is None:
        raise NotFound(zh=f"党员 {member_id!r} 未参加活动 {ctx.campaign_key!r}", en=f"member {member_id!r} takes no part in campaign {ctx.campaign_key!r}")
    return edge_results(mapping, edge)


def edge_results(mapping: Any, edge: Transition) -> list[Result]:
    """The results of `edge`'s guards from a row carrying their `figures` (`unless` conditions hold when their
    measure fails)."""
    results = results_from(mapping, edge.guards)
    return [r if r.condition in edge.conditions else Result(r.condition, r.have, r.need, not r.ok) for r in results]


def evaluate_branch(session: Session, ctx: EvalContext, branch_id: str, edge: Transition) -> list[Result]:
    row = Row()
    names = edge.guards
    query = branch_rows(row, ctx, names, branches_of([branch_id])).add_columns(*figures("branch", names, ctx, row))
    mapping = session.execute(query).mappings().first()
    if mapping is None:
        raise NotFound(zh=f"党支部 {branch_id!r} 未参加活动 {ctx.campaign_key!r}", en=f"branch {branch_id!r} takes no part in campaign {ctx.campaign_key!r}")
    return results_from(mapping, names)


def member_edge(state: str) -> Transition | None:
    return member_machine.advance_edge(state)


def branch_edge(state: str) -> Transition | None:
    return branch_machine.advance_edge(state)


def final_ratings(session: Session, key: str, member_ids: list[str], at: dt.datetime) -> set[str]:
    """Those of `member_ids` whose rating is final at T (conditions.rating_final: derived, not the sweep's mark)."""
    return set(
        session.scalars(
            select(Appraisal.member_id).where(
                Appraisal.campaign_key == key, Appraisal.member_id.in_(member_ids), rating_final(Appraisal, at)
            )
        )
    )
