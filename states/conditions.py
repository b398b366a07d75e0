"""Every condition of the campaign, defined once: a measure over the evidence and what it needs.

Each condition is a measure (`have`), what it needs (`need`) and the test between them (`ok`), all SQL. A
measure of evidence is a `Tally`: an aggregate over the subject's evidence rows, kept per subject and window as
evidence arrives (`states.facts`) and read from there by the chunk's statement; other measures read the subject's
row (its appraisal, its branch's state). The sweep evaluates them for a whole chunk in one statement; `explain`, a retry and the
machine's callbacks evaluate the very same expressions filtered to one subject, which also yields the figures
people read ("study hours 38 of 50").
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    String,
    Subquery,
    and_,
    case,
    cast,
    distinct,
    func,
    literal,
    null,
    select,
)
from sqlalchemy.orm import aliased

from states.db import day_offset, popcount
from states.machine import MAIN_PATH, next_phase
from states.models import Appraisal, BallotMeeting, BranchProgress, Evidence, MemberProgress, Person

Scope = Literal["member", "branch"]
RATINGS: tuple[str, ...] = ("qualified", "basically_qualified", "unqualified")


@dataclass(frozen=True)
class Window:
    """A slice of the campaign's dates whose facts are kept together: a phase, or a gap between two phases, cut
    into slices of at most `WINDOW_DAYS` days (so a window's distinct days fit one BIGINT bit mask)."""

    seq: int
    lo: dt.date
    hi: dt.date


WINDOW_DAYS = 62


def windows(phases: Sequence[tuple[dt.date, dt.date]]) -> tuple[Window, ...]:
    """The windows of a campaign whose phases (start, end) are given in order: they cover its first start to its
    last end without a gap, and every deadline's cut-off (a phase's end) is a window's last day."""
    spans: list[tuple[dt.date, dt.date]] = []
    for index, (start, end) in enumerate(phases):
        spans.append((start, end))
        if index + 1 < len(phases) and phases[index + 1][0] > end + dt.timedelta(days=1):
            spans.append((end + dt.timedelta(days=1), phases[index + 1][0] - dt.timedelta(days=1)))
    found: list[Window] = []
    for lo, hi in spans:
        while lo <= hi:
            top = min(hi, lo + dt.timedelta(days=WINDOW_DAYS - 1))
            found.append(Window(len(found), lo, top))
            lo = top + dt.timedelta(days=1)
    return tuple(found)


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
    windows: tuple[Window, ...] = ()
    """The campaign's fact windows (`windows`), from window_start to window_end."""

    @property
    def last_day(self) -> dt.date:
        return min(self.cutoff, self.window_end)


class Row:
    """The aliases a condition's expressions correlate with (one member or branch row of the outer query), and
    `facts`: the tallies of the subjects' evidence, one row per subject, when the query joins them."""

    mp: Any
    person: Any
    bp: Any
    appraisal: Any

    def __init__(self, prefix: str = "") -> None:
        self.mp, self.person, self.bp, self.appraisal = _aliases(prefix)
        self.facts: Subquery | None = None

    def tallied(self, tally: Tally) -> ColumnElement[Any]:
        if self.facts is None or tally.name not in self.facts.c:
            raise LookupError(f"tally {tally.name!r} is not joined: build the rows with the conditions they read")
        return tally.read(self.facts.c[tally.name])


@functools.cache
def _aliases(prefix: str) -> tuple[Any, Any, Any, Any]:
    # Aliases are immutable: one set per prefix serves every statement (building them is a sweep's main Python cost).
    return (
        aliased(MemberProgress, name=f"{prefix}mp"),
        aliased(Person, name=f"{prefix}p"),
        aliased(BranchProgress, name=f"{prefix}bp"),
        aliased(Appraisal, name=f"{prefix}a"),
    )


Expr = Callable[[EvalContext, Row], Any]  # a SQL expression (column, subquery or literal)


@dataclass(frozen=True)
class Tally:
    """A measure of a subject's own evidence in the campaign's window: one aggregate over its rows.

    A chunk's tallies come from one GROUP BY over the chunk's evidence (`facts`); one member's from the same
    statement filtered to that member. Either way the expression below is the only definition."""

    name: str
    subject: Scope
    kinds: tuple[str, ...]
    how: Literal["sum", "count", "days", "latest"]

    def aggregate(self) -> ColumnElement[Any]:
        chosen = Evidence.kind.in_(self.kinds)
        if self.how == "sum":
            return func.sum(case((chosen, Evidence.num)))
        if self.how == "count":
            return func.count(case((chosen, 1)))
        if self.how == "days":
            return func.count(distinct(case((chosen, Evidence.date))))
        # The latest date decides; on one date, the last row imported: the greatest "date, id, value" string
        # (the id is offset to a fixed width of 13 digits, so strings compare as (date, id) do).
        offset_id = cast(Evidence.id, BigInteger) + literal(_ID_OFFSET, BigInteger)
        ordered = cast(Evidence.date, String) + cast(offset_id, String) + Evidence.value
        return func.max(case((chosen, ordered)))

    # -- kept as facts (states.facts): per subject and window, merged as evidence arrives ----------------------

    def stored(self) -> tuple[str, ...]:
        """The facts columns this tally keeps: its figure, and for distinct days the window's day mask."""
        return (self.name, f"{self.name}_mask") if self.how == "days" else (self.name,)

    def build(self, lo: ColumnElement[dt.date]) -> list[ColumnElement[Any]]:
        """The facts columns from evidence rows of one window starting on `lo` (sums and counts never NULL)."""
        chosen = Evidence.kind.in_(self.kinds)
        if self.how == "sum":
            return [func.coalesce(func.sum(case((chosen, Evidence.num))), 0.0)]
        if self.how == "count":
            return [func.count(case((chosen, 1)))]
        if self.how == "days":
            bit = literal(1, BigInteger).op("<<")(day_offset(Evidence.date, lo))
            # Distinct days are distinct powers of two: their distinct sum is the window's mask (no bit_or on SQLite).
            mask = cast(func.coalesce(func.sum(distinct(case((chosen, bit)))), 0), BigInteger)
            return [func.count(distinct(case((chosen, Evidence.date)))), mask]
        return [self.aggregate()]

    def merged(self, old: Any, new: Any) -> dict[str, ColumnElement[Any]]:
        """The stored columns after adding a batch's facts `new` (the upsert's excluded columns) to `old` (the
        table's columns)."""
        name = self.name
        if self.how in ("sum", "count"):
            return {name: old[name] + new[name]}
        if self.how == "days":
            mask = old[f"{name}_mask"].op("|")(new[f"{name}_mask"])
            return {name: popcount(mask), f"{name}_mask": mask}
        was, came = old[name], new[name]
        return {name: case((came.is_(None), was), (was.is_(None), came), (came > was, came), else_=was)}

    def combined(self, column: ColumnElement[Any]) -> ColumnElement[Any]:
        """Windows add up: the figure over several windows' facts (they never share a day)."""
        return func.max(column) if self.how == "latest" else func.sum(column)

    def read(self, column: ColumnElement[Any]) -> ColumnElement[Any]:
        """The figure people read, from the aggregate's column (NULL where the subject has no such evidence)."""
        if self.how == "sum":
            return func.coalesce(column, 0.0)
        if self.how in ("count", "days"):
            return func.coalesce(column, 0)
        return func.substr(column, _LATEST_VALUE_AT)


_ID_OFFSET = 10**12
_LATEST_VALUE_AT = len("2024-01-01") + len(str(_ID_OFFSET)) + 1


@dataclass(frozen=True)
class Condition:
    name: str
    scope: Scope
    measure: Tally | Expr
    need: Expr
    test: Callable[[ColumnElement[Any], ColumnElement[Any]], ColumnElement[bool]]
    description: str

    @property
    def tally(self) -> Tally | None:
        return self.measure if isinstance(self.measure, Tally) else None

    def have(self, ctx: EvalContext, row: Row) -> Any:
        if isinstance(self.measure, Tally):
            return row.tallied(self.measure)
        return self.measure(ctx, row)

    def ok(self, ctx: EvalContext, row: Row) -> ColumnElement[bool]:
        return self.test(self.have(ctx, row), self.need(ctx, row))


# -- measures ------------------------------------------------------------------------------------------------


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


def rating_final(a: Any, at: dt.datetime) -> ColumnElement[bool]:
    """A rating is final at T once its publicity has ended at T: approved, `publicity_days` × 24 h past the
    approval (or past a dismissed objection's resolution), no objection pending — whether or not a sweep has run
    since. The one definition: the `publicity` condition, `excellent`, a new ballot, an objection and the views all
    read it (`a` is the Appraisal entity or an alias of it); `final_at` only records when a sweep told the member."""
    return and_(a.approved_at.is_not(None), a.publicity_ends_at <= at, a.objection_pending.is_(False))


def _publicity_over(ctx: EvalContext, row: Row) -> ColumnElement[bool]:
    return rating_final(row.appraisal, ctx.at)


def _member_kind(name: str, kinds: tuple[str, ...], description: str) -> Condition:
    return Condition(name, "member", Tally(name, "member", kinds, "count"), _const(1), _at_least, description)


def _branch_kind(name: str, description: str) -> Condition:
    return Condition(name, "branch", Tally(name, "branch", (name,), "count"), _const(1), _at_least, description)


# -- the conditions ------------------------------------------------------------------------------------------

CONDITIONS: tuple[Condition, ...] = (
    # member: study → analysis
    Condition(
        "study_hours",
        "member",
        Tally("study_hours", "member", ("study_self", "study_concentrated"), "sum"),
        lambda ctx, row: literal(ctx.study_hours),
        _at_least,
        "class hours of study in total (学时)",
    ),
    Condition(
        "concentrated_days",
        "member",
        Tally("concentrated_days", "member", ("study_concentrated",), "days"),
        lambda ctx, row: literal(ctx.concentrated_days),
        _at_least,
        "distinct days of concentrated training (集中学习培训)",
    ),
    Condition(
        "study_check",
        "member",
        Tally("study_check", "member", ("study_check",), "latest"),
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
        Tally("followup", "member", ("admonishment_talk",), "count"),
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
        Tally("concentrated_training", "branch", ("concentrated_training",), "days"),
        lambda ctx, row: literal(ctx.concentrated_days),
        _at_least,
        "concentrated training held on enough distinct days (集中学习培训)",
    ),
    _branch_kind("discussion_meeting", "the discussion on keeping the standard held (保持先进性大讨论)"),
    Condition(
        "opinions_solicited",
        "branch",
        Tally("opinions_solicited", "branch", ("opinions_solicited",), "sum"),
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


def tallies(scope: Scope, names: Iterable[str]) -> tuple[Tally, ...]:
    """The evidence tallies the named conditions read, each once."""
    found = (condition(scope, name).tally for name in names)
    return tuple(dict.fromkeys(t for t in found if t is not None))
