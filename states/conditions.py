"""Every condition of the campaign, defined once: a measure over the evidence and what it needs.

Each condition is a pair of SQL expressions correlated with the subject's row (`have`, `need`) and the test
between them (`ok`). The sweep evaluates them for a whole chunk in one statement; `explain`, a retry and the
machine's callbacks evaluate the very same expressions filtered to one subject, which also yields the figures
people read ("study hours 38 of 50").
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import (
    ColumnElement,
    and_,
    case,
    func,
    literal,
    null,
    or_,
    select,
)
from sqlalchemy.orm import aliased

from states.machine import MAIN_PATH, next_phase
from states.models import Appraisal, BallotMeeting, BranchProgress, Evidence, MemberProgress, Person

Scope = Literal["member", "branch"]
RATINGS: tuple[str, ...] = ("qualified", "basically_qualified", "unqualified")


@dataclass(frozen=True)
class EvalContext:
    """What a condition is measured against: the plan's thresholds, the evidence cut-off and the instant."""

    campaign_key: str
    study_hours: float
    concentrated_days: int
    window_start: dt.date
    window_end: dt.date
    cutoff: dt.date
    """Evidence dated up to this day counts (a deadline's phase end, or the date of T)."""
    at: dt.datetime
    """The instant (UTC) for time-bound conditions such as the end of publicity."""

    @property
    def last_day(self) -> dt.date:
        return min(self.cutoff, self.window_end)


class Row:
    """The aliases a condition's expressions correlate with (one member or branch row of the outer query)."""

    def __init__(self) -> None:
        self.mp = aliased(MemberProgress, name="mp")
        self.person = aliased(Person, name="p")
        self.bp = aliased(BranchProgress, name="bp")
        self.appraisal = aliased(Appraisal, name="a")


Expr = Callable[[EvalContext, Row], Any]  # a SQL expression (column, subquery or literal)


@dataclass(frozen=True)
class Condition:
    name: str
    scope: Scope
    have: Expr
    need: Expr
    test: Callable[[ColumnElement[Any], ColumnElement[Any]], ColumnElement[bool]]
    description: str

    def ok(self, ctx: EvalContext, row: Row) -> ColumnElement[bool]:
        return self.test(self.have(ctx, row), self.need(ctx, row))


# -- measures ------------------------------------------------------------------------------------------------


def _evidence_window(ctx: EvalContext) -> ColumnElement[bool]:
    # Evidence outside the campaign's window is accepted but counts for none.
    return Evidence.date.between(ctx.window_start, ctx.last_day)


def _of_member(kinds: tuple[str, ...]) -> Callable[[EvalContext, Row], Any]:
    def where(ctx: EvalContext, row: Row) -> Any:
        return and_(Evidence.member_id == row.mp.member_id, Evidence.kind.in_(kinds), _evidence_window(ctx))

    return where


def _of_branch(kind: str) -> Callable[[EvalContext, Row], Any]:
    def where(ctx: EvalContext, row: Row) -> Any:
        return and_(
            Evidence.branch_id == row.bp.branch_id,
            Evidence.member_id.is_(None),
            Evidence.kind == kind,
            _evidence_window(ctx),
        )

    return where


def _sum(where: Callable[[EvalContext, Row], Any]) -> Expr:
    return lambda ctx, row: (
        select(func.coalesce(func.sum(Evidence.num), 0.0)).where(where(ctx, row)).scalar_subquery()
    )


def _count(where: Callable[[EvalContext, Row], Any]) -> Expr:
    return lambda ctx, row: select(func.count()).select_from(Evidence).where(where(ctx, row)).scalar_subquery()


def _distinct_days(where: Callable[[EvalContext, Row], Any]) -> Expr:
    return lambda ctx, row: (
        select(func.count(func.distinct(Evidence.date))).where(where(ctx, row)).scalar_subquery()
    )


def _latest_value(where: Callable[[EvalContext, Row], Any]) -> Expr:
    # The latest date decides; on one date, the last row imported.
    return lambda ctx, row: (
        select(Evidence.value)
        .where(where(ctx, row))
        .order_by(Evidence.date.desc(), Evidence.id.desc())
        .limit(1)
        .scalar_subquery()
    )


def _const(value: Any) -> Expr:
    return lambda ctx, row: literal(value)


def _at_least(have: ColumnElement[Any], need: ColumnElement[Any]) -> ColumnElement[bool]:
    return func.coalesce(have, 0) >= need


def _equals(have: ColumnElement[Any], need: ColumnElement[Any]) -> ColumnElement[bool]:
    return func.coalesce(have == need, False)


def _is_set(have: ColumnElement[Any], need: ColumnElement[Any]) -> ColumnElement[bool]:
    return have.is_not(None)


def _ordinal(state: ColumnElement[str]) -> ColumnElement[int]:
    return case({name: index for index, name in enumerate(MAIN_PATH)}, value=state, else_=-1)


def _flag(expr: Callable[[EvalContext, Row], ColumnElement[bool]]) -> Expr:
    return lambda ctx, row: case((expr(ctx, row), 1), else_=0)


def _publicity_over(ctx: EvalContext, row: Row) -> ColumnElement[bool]:
    a = row.appraisal
    return or_(
        a.final_at.is_not(None),
        and_(a.approved_at.is_not(None), a.publicity_ends_at <= ctx.at, a.objection_pending.is_(False)),
    )


def _member_kind(name: str, kinds: tuple[str, ...], description: str) -> Condition:
    return Condition(name, "member", _count(_of_member(kinds)), _const(1), _at_least, description)


def _branch_kind(name: str, description: str) -> Condition:
    return Condition(name, "branch", _count(_of_branch(name)), _const(1), _at_least, description)


# -- the conditions ------------------------------------------------------------------------------------------

CONDITIONS: tuple[Condition, ...] = (
    # member: study → analysis
    Condition(
        "study_hours",
        "member",
        _sum(_of_member(("study_self", "study_concentrated"))),
        lambda ctx, row: literal(ctx.study_hours),
        _at_least,
        "class hours of study in total (学时)",
    ),
    Condition(
        "concentrated_days",
        "member",
        _distinct_days(_of_member(("study_concentrated",))),
        lambda ctx, row: literal(ctx.concentrated_days),
        _at_least,
        "distinct days of concentrated training (集中学习培训)",
    ),
    Condition(
        "study_check",
        "member",
        _latest_value(_of_member(("study_check",))),
        _const("pass"),
        _equals,
        "the check of learning results passed (学习培训成果检查)",
    ),
    # member: analysis → rectification
    _member_kind("analysis_report", ("analysis_report",), "a self-analysis report submitted (剖析报告)"),
    _member_kind(
        "satisfaction_evaluation",
        ("satisfaction_evaluation",),
        "the satisfaction evaluation of the report recorded (满意度测评)",
    ),
    _member_kind("heart_talk", ("heart_talk",), "a heart-to-heart talk recorded (谈心交心)"),
    # member: rectification → consolidation
    _member_kind("rectification_plan", ("rectification_plan",), "a rectification plan submitted (整改方案)"),
    _member_kind("good_deed", ("good_deed",), "a practical deed for the public recorded (好事实事)"),
    # member: consolidation → pledge (the appraisal)
    _member_kind("pledge_application", ("pledge_application",), "a written application submitted (书面申请)"),
    Condition(
        "member_meeting_ballot",
        "member",
        lambda ctx, row: row.appraisal.rating,
        _const("rated"),
        _is_set,
        "a rating decided by the branch member meeting's secret ballot (党员大会无记名投票)",
    ),
    Condition(
        "approval",
        "member",
        _flag(lambda ctx, row: row.appraisal.approved_at.is_not(None)),
        _const(1),
        _at_least,
        "the rating approved by the upper party committee (上级党委审批)",
    ),
    Condition(
        "publicity",
        "member",
        _flag(_publicity_over),
        _const(1),
        _at_least,
        "the publicity period over with no objection pending (公示)",
    ),
    Condition(
        "qualified",
        "member",
        lambda ctx, row: row.appraisal.rating,
        _const("qualified|basically_qualified"),
        lambda have, need: func.coalesce(have.in_(("qualified", "basically_qualified")), False),
        "rated qualified or basically qualified (合格/基本合格)",
    ),
    Condition(
        "unqualified",
        "member",
        lambda ctx, row: row.appraisal.rating,
        _const("unqualified"),
        _equals,
        "rated unqualified (不合格)",
    ),
    Condition(
        "followup",
        "member",
        _count(_of_member(("admonishment_talk",))),
        lambda ctx, row: case((row.appraisal.rating == "basically_qualified", 1), else_=0),
        _at_least,
        "the admonishment talk after a basically-qualified rating (诫勉谈话)",
    ),
    # member: pledge → completed
    _member_kind("oath", ("oath",), "took part in the renewal of the oath (重温入党誓词)"),
    _member_kind("public_commitment", ("public_commitment",), "a public commitment recorded (公开承诺)"),
    # member: the branch has left the member's phase (a member never moves ahead of its branch)
    Condition(
        "branch",
        "member",
        lambda ctx, row: func.coalesce(row.bp.state, "enrolled"),
        lambda ctx, row: case(
            {state: next_phase(state) for state in MAIN_PATH[:-1]}, value=row.mp.state, else_=null()
        ),
        lambda have, need: _ordinal(have) >= _ordinal(need),
        "the member's branch has moved on (支部已转入下一阶段)",
    ),
    # branch conditions
    _branch_kind("mobilization_meeting", "the mobilisation meeting held (动员大会)"),
    Condition(
        "concentrated_training",
        "branch",
        _distinct_days(_of_branch("concentrated_training")),
        lambda ctx, row: literal(ctx.concentrated_days),
        _at_least,
        "concentrated training held on enough distinct days (集中学习培训)",
    ),
    _branch_kind("discussion_meeting", "the discussion on keeping the standard held (保持先进性大讨论)"),
    Condition(
        "opinions_solicited",
        "branch",
        _sum(_of_branch("opinions_solicited")),
        _const(1),
        _at_least,
        "opinions solicited inside and outside the party (征求意见)",
    ),
    _branch_kind("analysis_meeting", "the analysis meeting held (分析会)"),
    _branch_kind("branch_rectification_plan", "the branch's rectification plan made (支部整改方案)"),
    _branch_kind("theme_activity", "the theme activity on the organ's style held (转变机关作风主题活动)"),
    Condition(
        "member_meeting_ballot",
        "branch",
        lambda ctx, row: (
            select(func.count())
            .select_from(BallotMeeting)
            .where(
                BallotMeeting.campaign_key == ctx.campaign_key,
                BallotMeeting.branch_id == row.bp.branch_id,
                BallotMeeting.date <= ctx.cutoff,
            )
            .scalar_subquery()
        ),
        _const(1),
        _at_least,
        "the branch member meeting held its secret ballot with quorum (党员大会)",
    ),
    _branch_kind("oath_ceremony", "the oath ceremony held (集中宣誓)"),
)

_BY_KEY: dict[tuple[str, str], Condition] = {(c.scope, c.name): c for c in CONDITIONS}


def condition(scope: Scope, name: str) -> Condition:
    return _BY_KEY[(scope, name)]


def names(scope: Scope) -> tuple[str, ...]:
    return tuple(c.name for c in CONDITIONS if c.scope == scope)
