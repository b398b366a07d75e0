"""The campaign's static HTML reports — an overview, one page per branch, the publicity notices — in Chinese, offline.

Everything here reads: the conditions are evaluated by the core's own expressions (`states.evaluate`), set-based,
one statement per phase for a chunk of branches, so a branch of 5,000 members costs a handful of queries rather
than one per member. The appraisal is shown by its ratings only: nothing here reads a ballot's tallies.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import tempfile
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from reports import diagram
from reports.cells import neutralise
from states import branch as branch_machine
from states import labels
from states import member as member_machine
from states.clock import as_utc, day_start
from states.conditions import EvalContext, Row
from states.errors import NotFound
from states.evaluate import (
    Result,
    branch_rows,
    branches_of,
    context,
    figures,
    member_rows,
    of_branch_ids,
    results_from,
)
from states.labels import Figure, Locale
from states.machine import MAIN_PATH, PHASES, Transition, ordinal
from states.models import (
    Appraisal,
    BallotMeeting,
    Branch,
    BranchHistory,
    BranchProgress,
    Campaign,
    Evidence,
    FiredDeadline,
    MemberProgress,
    Notice,
    Person,
    Phase,
    TransitionLog,
)
from states.records import BRANCH_KINDS, MEETINGS, MEMBER_KINDS
from states.status import passed_phases, phase_at, summary

T = TypeVar("T")

TEMPLATES_DIR: Path = Path(__file__).resolve().parent.parent / "templates"
LOCALE: Locale = "zh-CN"
BRANCHES_PER_CHUNK = 200
"""Branches evaluated together: one statement per phase for all their members, then their pages are written."""
STUCK_LIST_LIMIT = 300
"""Stuck members listed on the overview; beyond that the overview counts them and the branch pages list them."""

# Words labels.py does not hold (it names phases, states, conditions, ratings and levels): evidence kinds,
# roles, log causes and notice statuses. Unknown keys fall back to the identifier rather than failing a report.
KIND_LABELS: dict[str, str] = {
    "study_self": "个人自学",
    "study_concentrated": "集中学习培训（个人）",
    "study_check": "学习培训成果检查",
    "analysis_report": "剖析报告",
    "satisfaction_evaluation": "满意度测评",
    "heart_talk": "谈心交心",
    "rectification_plan": "个人整改方案",
    "good_deed": "好事实事",
    "pledge_application": "书面申请",
    "admonishment_talk": "诫勉谈话",
    "disposition": "组织处置",
    "oath": "重温入党誓词（个人）",
    "public_commitment": "公开承诺",
    "mobilization_meeting": "动员大会",
    "concentrated_training": "集中学习培训",
    "discussion_meeting": "保持先进性大讨论",
    "opinions_solicited": "征求意见",
    "analysis_meeting": "分析会",
    "branch_rectification_plan": "支部整改方案",
    "theme_activity": "转变机关作风主题活动",
    "oath_ceremony": "集中宣誓仪式",
    "member_meeting_ballot": "党员大会（民主评议）",
}
ROLE_LABELS: dict[str, str] = {
    "member": "党员",
    "branch_secretary": "党支部书记",
    "committee_secretary": "机关党委书记",
    "party_group_deputy": "党组副书记",
    "party_group_secretary": "党组书记",
    "office_director": "领导小组办公室主任",
    "inspector": "巡视组",
}
CAUSE_LABELS: dict[str, str] = {
    "sweep": "按期推进",
    "join": "加入活动",
    "retry": "重新核验",
    "exempt": "免予参加",
    "exempt_undo": "撤销免予参加",
    "refer": "移交处理",
    "resume": "恢复参加",
    "ballot": "党员大会评定",
    "approval": "上级党委批准",
    "approval_rejected": "上级党委退回",
    "excellent": "评为优秀共产党员",
    "objection": "公示期异议",
    "objection_upheld": "异议成立",
    "objection_dismissed": "异议不成立",
    "withdrawal_confirmed": "支部确认视为脱党",
    "withdrawal_rejected": "退回脱党确认",
    "withdrawal_approved": "批准除名",
    "accept_late": "接受补交书面申请",
    "transfer": "转接组织关系",
}
NOTICE_STATUS_LABELS: dict[str, str] = {
    "pending": "待发送",
    "sent": "已发送",
    "delivered": "已发送",
    "failed": "发送失败",
    "undeliverable": "无法投递",
}
# One colour per state for the chart: the phases darken as they advance, side states stand apart.
STATE_COLOURS: dict[str, str] = {
    "enrolled": "#cbd5e1",
    "study": "#bfdbfe",
    "analysis": "#93c5fd",
    "rectification": "#60a5fa",
    "consolidation": "#3b82f6",
    "pledge": "#1d4ed8",
    "completed": "#15803d",
    "exempt": "#a8a29e",
    "referred": "#a855f7",
    "withdrawal_pending": "#f59e0b",
    "withdrawn": "#57534e",
    "disqualified": "#7f1d1d",
}


_FIGURE = re.compile(r"^[+-]?[\d.,:/ ]*%?$")


def _inert(value: object) -> object:
    """Every text a cell shows is made inert for spreadsheets (a copied table must not run "=HYPERLINK(…)");
    plain figures such as "-1" or "+3" stay as they are."""
    if isinstance(value, str) and not isinstance(value, Markup) and not _FIGURE.match(value):
        return neutralise(value)
    return value


def _word(table: dict[str, str], key: str) -> str:
    return table.get(key, key)


def kind_label(kind: str) -> str:
    return _word(KIND_LABELS, kind)


# -- the environment ---------------------------------------------------------------------------------------------


def make_environment(templates_dir: Path | None = None) -> Environment:
    """The one Jinja2 environment for reports: absolute loader path, HTML autoescaped, undefined names fail."""
    root = (templates_dir or TEMPLATES_DIR).resolve()
    env = Environment(
        loader=FileSystemLoader(str(root)),
        # select_autoescape compares name endings, so "html.j2" is what makes `index.html.j2` escape.
        autoescape=select_autoescape(enabled_extensions=("html", "html.j2"), default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        finalize=_inert,
    )
    env.globals["state_colour"] = lambda state: STATE_COLOURS.get(state, "#94a3b8")
    env.globals["state_label"] = lambda state: labels.state_label(state, LOCALE)
    return env


# -- typed contexts ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Unmet:
    """One unmet condition as people read it ("学时 38/50"), with its figures."""

    condition: str
    text: str
    have: Figure
    need: Figure


@dataclass(frozen=True)
class Check:
    """One condition of a branch's next step, met or not."""

    condition: str
    label: str
    text: str
    ok: bool
    figure: str = ""
    """"4/3" for a counted condition (training days held of those needed), met or not."""


@dataclass(frozen=True)
class PhaseSpan:
    """A phase on the timeline: its window, where it sits on the bar (percent) and whether its deadline fired."""

    name: str
    label: str
    start: str
    end: str
    short: str
    """"3月25日—4月30日": what fits on the bar."""
    deadline: str
    left: float
    width: float
    status: str
    """"past", "current" or "future" at T."""
    fired: bool


@dataclass(frozen=True)
class Timeline:
    phases: list[PhaseSpan]
    at_percent: float
    at_label: str
    stage: str
    stage_label: str


@dataclass(frozen=True)
class Segment:
    """One state's share of a branch's bar in the chart (x and width in chart units)."""

    state: str
    label: str
    count: int
    x: float
    width: float
    colour: str
    stuck: bool
    ink: str = "#1f2933"
    """The colour of the count written on the segment: white on the dark fills."""


@dataclass
class MemberLine:
    member_id: str
    name: str
    role: str
    role_label: str
    branch_id: str
    state: str
    state_label: str
    since: str
    stuck: bool
    stuck_since: str
    days_stuck: int
    unmet: list[Unmet]
    notes: list[str]
    """What else a reader needs: the state an exempt member left, a rating, a pending disposition …"""

    @property
    def held_by_branch_only(self) -> bool:
        return bool(self.unmet) and all(u.condition == "branch" for u in self.unmet)


@dataclass
class BranchLine:
    branch_id: str
    name: str
    unit: str
    secretary: str
    state: str
    state_label: str
    stuck: bool
    stuck_since: str
    days_stuck: int
    members: int
    by_state: dict[str, int]
    stuck_members: int
    completed: int
    checks: list[Check]
    escalation: str
    """The highest level of the responsibility chain told about the branch in its current phase, or ""."""
    page: str
    publicity_page: str
    segments: list[Segment] = field(default_factory=list)
    short_name: str = ""
    """The name as the chart shows it (long names cut), and where the chart's "stuck" dot goes left of it."""
    marker_x: float = 0.0
    why: str = ""
    """Why it lags, in one line for the chart: the branch's own gaps, else what its stuck members lack most."""

    @property
    def unmet(self) -> list[Check]:
        return [c for c in self.checks if not c.ok]

    @property
    def lagging(self) -> bool:
        return self.stuck or self.stuck_members > 0

    def lag_key(self) -> tuple[Any, ...]:
        """Lagging first: a stuck branch, then the larger share of stuck members, then the least advanced."""
        share = self.stuck_members / self.members if self.members else 0.0
        return (not self.stuck, -share, -self.stuck_members, ordinal(self.state), self.branch_id)


@dataclass(frozen=True)
class MeetingLine:
    date: str
    phase_label: str
    kind: str
    label: str
    signed_in: int | None
    participants: int
    rate: str
    """"92%" or "—" when no sign-in count was recorded or the branch had no participants that day."""
    low: bool


@dataclass(frozen=True)
class EvidenceCount:
    kind: str
    label: str
    scope: str
    phase_label: str
    count: int


@dataclass(frozen=True)
class EvidencePhase:
    """The records of one phase: the branch's own and its members', each kind with its count."""

    phase_label: str
    branch: list[EvidenceCount]
    member: list[EvidenceCount]


@dataclass(frozen=True)
class EscalationLine:
    queued_at: str
    phase_label: str
    level_label: str
    role_label: str
    recipient: str
    days_stuck: int
    stuck_members: int
    status_label: str
    unmet: list[str]


@dataclass(frozen=True)
class LogLine:
    at: str
    subject: str
    change: str
    cause_label: str
    actor: str
    reason: str


@dataclass
class AppraisalLine:
    """A branch's appraisal outcomes: ratings (never votes), excellence and the ways out of the campaign."""

    branch_id: str
    name: str
    page: str
    ratings: dict[str, int] = field(default_factory=dict)
    awaiting_approval: int = 0
    in_publicity: int = 0
    final: int = 0
    excellent: int = 0
    withdrawal_pending: int = 0
    withdrawn: int = 0
    disqualified: int = 0
    disposition_pending: int = 0

    @property
    def any(self) -> bool:
        return bool(
            sum(self.ratings.values()) or self.excellent or self.withdrawal_pending or self.withdrawn
            or self.disqualified
        )


@dataclass(frozen=True)
class Outcome:
    """A named member in the appraisal's outcome lists (excellent, withdrawn, disqualified)."""

    member_id: str
    name: str
    branch: str
    note: str


@dataclass
class AppraisalSummary:
    branches: list[AppraisalLine]
    totals: AppraisalLine
    excellent: list[Outcome]
    withdrawn: list[Outcome]
    withdrawal_pending: list[Outcome]
    disqualified: list[Outcome]

    @property
    def known(self) -> bool:
        return self.totals.any


@dataclass(frozen=True)
class PublicityItem:
    member_id: str
    name: str
    rating_label: str


@dataclass(frozen=True)
class PublicityNotice:
    approved_at: str
    dated: str
    """The notice's date (the approval's day, in the campaign's timezone), as signed at its foot."""
    starts: str
    ends: str
    days: int
    over: bool
    items: list[PublicityItem]


@dataclass(frozen=True)
class CampaignInfo:
    key: str
    title: str
    timezone: str
    at: str
    at_date: str


# -- queries -------------------------------------------------------------------------------------------------------


def _chunks(items: Sequence[T], size: int) -> Iterator[list[T]]:
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


def _fmt_at(value: dt.datetime | None, tz: str) -> str:
    return labels.format_datetime(as_utc(value), tz, LOCALE) if value is not None else ""


def _unmet(results: Iterable[Result]) -> list[Unmet]:
    return [
        Unmet(r.condition, labels.describe_unmet(r.condition, r.have, r.need, LOCALE), r.have, r.need)
        for r in results
        if not r.ok
    ]


def _figure(result: Result) -> str:
    words = labels.CONDITIONS.get(result.condition)
    if words is None or not words.counted or not labels.is_number(result.need):
        return ""
    have = result.have if labels.is_number(result.have) else 0
    return f"{labels.format_number(have)}/{labels.format_number(result.need)}"


def _disqualify_edge() -> Transition:
    return member_machine.machine().edges("disqualify", "consolidation")[0]


def _member_edge(state: str, rating: str | None) -> Transition | None:
    # The next step `explain` shows (states.status.member_view): a member rated unqualified is on its way to
    # `disqualified`, so what it waits for is that edge's conditions, not the pledge's.
    if state == "consolidation" and rating == "unqualified":
        return _disqualify_edge()
    return member_machine.advance_edge(state)


def member_results(
    session: Session, ctx: EvalContext, branch_ids: Sequence[str]
) -> dict[str, list[Result]]:
    """Every condition of each member's next step, for the members of `branch_ids`: one statement per phase."""
    found: dict[str, list[Result]] = {}
    for phase in PHASES:
        edge = member_machine.advance_edge(phase)
        assert edge is not None
        candidates = [edge] + ([_disqualify_edge()] if phase == "consolidation" else [])
        names = tuple(dict.fromkeys(name for e in candidates for name in e.guards))
        row = Row()
        query = (
            member_rows(row, ctx, names, of_branch_ids(branch_ids))
            .add_columns(row.mp.member_id.label("member_id"), row.appraisal.rating.label("rating"))
            .add_columns(*figures("member", names, ctx, row))
            .where(row.mp.state == phase)
        )
        for mapping in session.execute(query).mappings():
            chosen = _member_edge(phase, mapping["rating"])
            assert chosen is not None
            results = results_from(mapping, chosen.guards)
            # `unless` conditions hold when their measure fails (as states.evaluate.evaluate_member reads them).
            found[mapping["member_id"]] = [
                r if r.condition in chosen.conditions else Result(r.condition, r.have, r.need, not r.ok)
                for r in results
            ]
    return found


def branch_results(session: Session, ctx: EvalContext, branch_ids: Sequence[str]) -> dict[str, list[Result]]:
    """Every condition of each branch's next step: one statement per phase."""
    found: dict[str, list[Result]] = {}
    for phase in PHASES:
        edge = branch_machine.advance_edge(phase)
        assert edge is not None
        row = Row()
        query = (
            branch_rows(row, ctx, edge.guards, branches_of(branch_ids))
            .add_columns(row.bp.branch_id.label("branch_id"))
            .add_columns(*figures("branch", edge.guards, ctx, row))
            .where(row.bp.state == phase)
        )
        for mapping in session.execute(query).mappings():
            found[mapping["branch_id"]] = results_from(mapping, edge.guards)
    return found


def participants_on(
    session: Session, tz: str, branch_ids: Sequence[str], days: Iterable[tuple[str, dt.date]]
) -> dict[tuple[str, dt.date], int]:
    """How many participants each branch had on each day, from the branch history the roster imports keep.

    A person belongs, on a day, to the branch of their latest history row before that day ends. The history
    starts at the first roster import, so whoever was in that first roster counts as there from the start;
    a person first seen in a later import joined then.
    """
    wanted = set(days)
    if not wanted:
        return {}
    baseline = session.scalar(select(func.min(BranchHistory.since)))
    ever = select(BranchHistory.member_id).where(BranchHistory.branch_id.in_(branch_ids))
    history: dict[str, list[tuple[dt.datetime, str]]] = defaultdict(list)
    for member_id, branch_id, since in session.execute(
        select(BranchHistory.member_id, BranchHistory.branch_id, BranchHistory.since)
        .join(Person, Person.member_id == BranchHistory.member_id)
        .where(BranchHistory.member_id.in_(ever), Person.role != "inspector")
        .order_by(BranchHistory.member_id, BranchHistory.since)
    ):
        history[member_id].append((as_utc(since), branch_id))
    first_import = as_utc(baseline) if baseline is not None else None
    counts: dict[tuple[str, dt.date], int] = {}
    for day in sorted({d for _b, d in wanted}):
        day_ends = day_start(day + dt.timedelta(days=1), tz)
        where: dict[str, int] = defaultdict(int)
        for rows in history.values():
            current = [branch for since, branch in rows if since < day_ends]
            if current:
                where[current[-1]] += 1
            elif rows[0][0] == first_import:
                where[rows[0][1]] += 1
        for branch_id, d in wanted:
            if d == day:
                counts[(branch_id, d)] = where.get(branch_id, 0)
    return counts


def _phase_of(day: dt.date, windows: Sequence[Phase]) -> str:
    for phase in windows:
        if phase.start <= day <= phase.end:
            return labels.phase_label(phase.name, LOCALE)
    return "—"


# -- assembling the pages --------------------------------------------------------------------------------------


class _Report:
    """One report run: the campaign's facts at T, gathered chunk by chunk, and the pages rendered from them."""

    def __init__(self, session: Session, key: str, at: dt.datetime) -> None:
        campaign = session.get(Campaign, key)
        if campaign is None:
            raise NotFound(f"unknown campaign {key!r}")
        self.session = session
        self.campaign = campaign
        self.key = key
        self.at = as_utc(at)
        self.tz = campaign.timezone
        self.ctx = context(session, key, self.at)
        self.windows = list(session.scalars(select(Phase).where(Phase.campaign_key == key).order_by(Phase.seq)))
        self.passed = set(passed_phases(session, key, self.at))
        self.deadlines = {p.name: as_utc(p.deadline_at) for p in self.windows}
        self.info = CampaignInfo(
            key=key,
            title=campaign.title,
            timezone=self.tz,
            at=_fmt_at(self.at, self.tz),
            at_date=labels.format_date(self.ctx.cutoff, LOCALE),
        )
        self.names: dict[str, str] = {}

    # -- shared pieces --

    def timeline(self) -> Timeline:
        first, last = self.windows[0].start, self.windows[-1].end
        total = (last - first).days + 1
        fired = set(
            self.session.scalars(select(FiredDeadline.name).where(FiredDeadline.campaign_key == self.key))
        )
        stage = phase_at(self.session, self.key, self.at)
        spans = []
        for phase in self.windows:
            deadline = as_utc(phase.deadline_at)
            status = "past" if deadline <= self.at else "future" if self.at < as_utc(phase.starts_at) else "current"
            spans.append(
                PhaseSpan(
                    name=phase.name,
                    label=labels.phase_label(phase.name, LOCALE),
                    start=labels.format_date(phase.start, LOCALE),
                    end=labels.format_date(phase.end, LOCALE),
                    short=f"{phase.start.month}月{phase.start.day}日—{phase.end.month}月{phase.end.day}日",
                    deadline=_fmt_at(deadline, self.tz),
                    left=round(100 * (phase.start - first).days / total, 3),
                    width=round(100 * ((phase.end - phase.start).days + 1) / total, 3),
                    status=status,
                    fired=phase.name in fired,
                )
            )
        span = (day_start(last + dt.timedelta(days=1), self.tz) - day_start(first, self.tz)).total_seconds()
        elapsed = (self.at - day_start(first, self.tz)).total_seconds()
        return Timeline(
            phases=spans,
            at_percent=round(max(0.0, min(100.0, 100 * elapsed / span)), 3),
            at_label=self.info.at,
            stage=stage,
            stage_label=labels.phase_label(stage, LOCALE),
        )

    def stuck_since(self, state: str, since: dt.datetime) -> tuple[bool, dt.datetime | None]:
        """Stuck when in a phase whose deadline has passed; since the later of the deadline and entering it."""
        if state not in self.passed:
            return False, None
        return True, max(as_utc(since), self.deadlines[state])

    def _days(self, since: dt.datetime | None) -> int:
        return max(0, (self.at - since).days) if since is not None else 0

    def person_names(self, ids: Iterable[str]) -> dict[str, str]:
        missing = sorted({i for i in ids if i and i not in self.names})
        for chunk in _chunks(missing, 500):
            rows = self.session.execute(select(Person.member_id, Person.name).where(Person.member_id.in_(chunk)))
            self.names.update({member_id: name for member_id, name in rows})
        return self.names

    def _who(self, person_id: str) -> str:
        name = self.names.get(person_id)
        return f"{name}（{person_id}）" if name else person_id

    # -- a chunk of branches --

    def branches(self) -> list[tuple[str, str, str, str, dt.datetime]]:
        return list(
            self.session.execute(
                select(Branch.branch_id, Branch.name, Branch.unit, BranchProgress.state, BranchProgress.state_since)
                .join(BranchProgress, BranchProgress.branch_id == Branch.branch_id)
                .where(BranchProgress.campaign_key == self.key)
                .order_by(Branch.branch_id)
            )
        )

    def chunk(self, branches: Sequence[tuple[str, str, str, str, dt.datetime]]) -> _Chunk:
        ids = [b[0] for b in branches]
        s = self.session
        members = list(
            s.execute(
                select(
                    Person.member_id, Person.name, Person.role, Person.branch_id, MemberProgress.state,
                    MemberProgress.state_since, MemberProgress.prior_state, Appraisal.rating, Appraisal.approved_at,
                    Appraisal.publicity_ends_at, Appraisal.final_at, Appraisal.excellent,
                    Appraisal.objection_pending, Appraisal.withdrawal_confirmed_at,
                )
                .join(Person, Person.member_id == MemberProgress.member_id)
                .outerjoin(
                    Appraisal,
                    (Appraisal.campaign_key == MemberProgress.campaign_key)
                    & (Appraisal.member_id == MemberProgress.member_id),
                )
                .where(MemberProgress.campaign_key == self.key, Person.branch_id.in_(ids))
                .order_by(Person.branch_id, Person.member_id)
            ).mappings()
        )
        for m in members:
            self.names[m["member_id"]] = m["name"]
        disqualified = [m["member_id"] for m in members if m["state"] == "disqualified"]
        # Recorded or pending exactly as states.status.member_view tells them apart.
        disposed: set[str] = (
            {
                member_id
                for member_id in s.scalars(
                    select(Evidence.member_id).where(
                        Evidence.kind == "disposition", Evidence.member_id.in_(disqualified)
                    )
                )
                if member_id is not None
            }
            if disqualified
            else set()
        )
        in_window = Evidence.date.between(self.ctx.window_start, self.ctx.last_day)
        meetings = list(
            s.execute(
                select(Evidence.branch_id, Evidence.kind, Evidence.date, Evidence.num)
                .where(
                    Evidence.branch_id.in_(ids), Evidence.member_id.is_(None), Evidence.kind.in_(MEETINGS), in_window
                )
                .order_by(Evidence.branch_id, Evidence.date, Evidence.id)
            )
        )
        # The branch member meeting's attendance (entitled, present) is a sign-in, not a vote: shown like the others.
        ballots = list(
            s.execute(
                select(BallotMeeting.branch_id, BallotMeeting.date, BallotMeeting.present)
                .where(
                    BallotMeeting.campaign_key == self.key, BallotMeeting.branch_id.in_(ids),
                    BallotMeeting.date <= self.ctx.cutoff,
                )
                .order_by(BallotMeeting.branch_id, BallotMeeting.date, BallotMeeting.id)
            )
        )
        counts = list(
            s.execute(
                select(Evidence.branch_id, Evidence.kind, func.count())
                .where(Evidence.branch_id.in_(ids), in_window)
                .group_by(Evidence.branch_id, Evidence.kind)
            )
        )
        log = list(
            s.execute(
                select(TransitionLog)
                .where(
                    TransitionLog.campaign_key == self.key,
                    TransitionLog.branch_id.in_(ids),
                    TransitionLog.at <= self.at,
                    # The branch's own moves, and every operator action on its members; a member's routine
                    # moves by the sweep are what the members table already shows.
                    or_(TransitionLog.member_id.is_(None), TransitionLog.cause.not_in(("sweep", "join"))),
                )
                .order_by(TransitionLog.at, TransitionLog.id)
            ).scalars()
        )
        days = [(b, d) for b, _k, d, _n in meetings] + [(b, d) for b, d, _p in ballots]
        return _Chunk(
            ids=ids,
            members=members,
            member_results=member_results(s, self.ctx, ids),
            branch_results=branch_results(s, self.ctx, ids),
            disposed=disposed,
            meetings=meetings,
            ballots=ballots,
            counts=counts,
            log=log,
            participants=participants_on(s, self.tz, ids, days),
        )

    def escalations(self) -> dict[str, list[Notice]]:
        """Every escalation notice of the campaign, by branch (few: branches × phases × levels × recipients)."""
        found: dict[str, list[Notice]] = defaultdict(list)
        for notice in self.session.scalars(
            select(Notice)
            .where(Notice.campaign_key == self.key, Notice.event == "branch_escalation", Notice.queued_at <= self.at)
            .order_by(Notice.queued_at, Notice.id)
        ):
            found[str(notice.context.get("branch_id", ""))].append(notice)
        return found

    # -- lines --

    def member_line(self, m: Any, results: list[Result] | None, disposed: set[str]) -> MemberLine:
        stuck, since = self.stuck_since(m["state"], m["state_since"])
        notes: list[str] = []
        if m["state"] in ("exempt", "referred") and m["prior_state"]:
            notes.append(f"原状态：{labels.state_label(m['prior_state'], LOCALE)}")
        if m["rating"]:
            rating = labels.rating_label(m["rating"], LOCALE)
            if m["final_at"] is not None:
                notes.append(f"评定：{rating}（已确定）")
            elif m["approved_at"] is not None:
                pending = "，有异议待处理" if m["objection_pending"] else ""
                notes.append(f"评定：{rating}（公示至 {_fmt_at(m['publicity_ends_at'], self.tz)}{pending}）")
            else:
                notes.append(f"评定：{rating}（待上级党委审批）")
        if m["excellent"]:
            notes.append("优秀共产党员")
        if m["state"] == "withdrawal_pending":
            notes.append("支部已确认，待上级党委批准" if m["withdrawal_confirmed_at"] else "待支部确认")
        if m["state"] == "disqualified":
            notes.append("组织处置：已记录" if m["member_id"] in disposed else "组织处置：待定")
        return MemberLine(
            member_id=m["member_id"],
            name=m["name"],
            role=m["role"],
            role_label=_word(ROLE_LABELS, m["role"]),
            branch_id=m["branch_id"],
            state=m["state"],
            state_label=labels.state_label(m["state"], LOCALE),
            since=_fmt_at(m["state_since"], self.tz),
            stuck=stuck,
            stuck_since=_fmt_at(since, self.tz),
            days_stuck=self._days(since),
            # Until the deadline, "the branch has not moved on" is true of every member and says nothing;
            # once stuck, it is the reason (or one of them) a member waits.
            unmet=[u for u in _unmet(results or []) if stuck or u.condition != "branch"],
            notes=notes,
        )

    def branch_line(
        self,
        branch: tuple[str, str, str, str, dt.datetime],
        members: list[MemberLine],
        results: list[Result] | None,
        secretary: str,
        escalations: list[Notice],
        publicity: bool,
    ) -> BranchLine:
        branch_id, name, unit, state, state_since = branch
        stuck, since = self.stuck_since(state, state_since)
        short = name if len(name) <= 14 else name[:13] + "…"
        by_state: dict[str, int] = defaultdict(int)
        for m in members:
            by_state[m.state] += 1
        levels = [
            str(n.context.get("level")) for n in escalations if n.context.get("phase") == state and stuck
        ]
        top = max(levels, key=labels.LEVELS.index, default="")
        checks = [
            Check(
                r.condition,
                labels.condition_label(r.condition, LOCALE),
                labels.describe_unmet(r.condition, r.have, r.need, LOCALE)
                if not r.ok
                else labels.condition_label(r.condition, LOCALE),
                r.ok,
                _figure(r),
            )
            for r in results or []
        ]
        return BranchLine(
            branch_id=branch_id,
            name=name,
            unit=unit,
            secretary=secretary,
            state=state,
            state_label=labels.state_label(state, LOCALE),
            stuck=stuck,
            stuck_since=_fmt_at(since, self.tz),
            days_stuck=self._days(since),
            members=len(members),
            by_state={s: by_state[s] for s in labels.STATES if by_state.get(s)},
            stuck_members=sum(1 for m in members if m.stuck),
            completed=by_state.get("completed", 0),
            checks=checks,
            escalation=(
                f"{labels.level_label(top, LOCALE)}（{labels.level_role(top, LOCALE)}）" if top else ""
            ),
            page=f"branch-{branch_id}.html",
            publicity_page=f"publicity-{branch_id}.html" if publicity else "",
            short_name=short,
            marker_x=round(Chart(height=0.0).name_x - diagram.text_width(short, 13.0) - 10, 1),
            why=_why(stuck, checks, members),
        )

    def meeting_lines(self, chunk: _Chunk, branch_id: str) -> list[MeetingLine]:
        rows: list[tuple[dt.date, str, int | None]] = [
            (d, kind, int(num) if num is not None else None) for b, kind, d, num in chunk.meetings if b == branch_id
        ]
        rows += [(d, "member_meeting_ballot", present) for b, d, present in chunk.ballots if b == branch_id]
        rows.sort(key=lambda r: r[0])
        lines = []
        for day, kind, signed in rows:
            participants = chunk.participants.get((branch_id, day), 0)
            rate = signed / participants if signed is not None and participants else None
            lines.append(
                MeetingLine(
                    date=labels.format_date(day, LOCALE),
                    phase_label=_phase_of(day, self.windows),
                    kind=kind,
                    label=kind_label(kind),
                    signed_in=signed,
                    participants=participants,
                    rate=f"{rate:.0%}" if rate is not None else "—",
                    # Below four in five signed in is worth a second look by whoever reads the page.
                    low=rate is not None and rate < 0.8,
                )
            )
        return lines

    def evidence_counts(self, chunk: _Chunk, branch_id: str) -> list[EvidencePhase]:
        by_kind = {kind: n for b, kind, n in chunk.counts if b == branch_id}
        order = [*BRANCH_KINDS, *MEMBER_KINDS]
        phase_of_kind = {
            kind: phase
            for phase in PHASES
            for edge in (member_machine.advance_edge(phase), branch_machine.advance_edge(phase))
            if edge is not None
            for kind in edge.conditions
        }
        out = []
        kinds = [*order, *sorted(k for k in by_kind if k not in order)]
        phase_rank = {p: i for i, p in enumerate(PHASES)}

        def rank(kind: str) -> int:
            return phase_rank.get(phase_of_kind.get(kind) or _KIND_PHASE.get(kind, ""), len(PHASES))

        for kind in sorted(kinds, key=lambda k: (rank(k), k not in BRANCH_KINDS)):
            phase = phase_of_kind.get(kind) or _KIND_PHASE.get(kind, "")
            out.append(
                EvidenceCount(
                    kind=kind,
                    label=kind_label(kind),
                    scope="支部" if kind in BRANCH_KINDS else "党员",
                    phase_label=labels.phase_label(phase, LOCALE) if phase else "—",
                    count=by_kind.get(kind, 0),
                )
            )
        grouped: dict[str, EvidencePhase] = {}
        for count in out:
            group = grouped.setdefault(count.phase_label, EvidencePhase(count.phase_label, [], []))
            (group.branch if count.scope == "支部" else group.member).append(count)
        return list(grouped.values())

    def escalation_lines(self, notices: list[Notice]) -> list[EscalationLine]:
        self.person_names(n.recipient_id for n in notices)
        lines = []
        for n in notices:
            c = n.context
            level = str(c.get("level", ""))
            unmet = [
                labels.describe_unmet(name, f.get("have"), f.get("need"), LOCALE)
                for name, f in (c.get("figures") or {}).items()
                if isinstance(f, dict) and not f.get("ok") and name in labels.CONDITIONS
            ]
            lines.append(
                EscalationLine(
                    queued_at=_fmt_at(n.queued_at, self.tz),
                    phase_label=labels.phase_label(str(c.get("phase")), LOCALE) if c.get("phase") in PHASES else "—",
                    level_label=labels.level_label(level, LOCALE) if level in labels.LEVELS else level,
                    role_label=labels.level_role(level, LOCALE) if level in labels.LEVELS else "",
                    recipient=self._who(n.recipient_id),
                    days_stuck=int(c.get("days_stuck") or 0),
                    stuck_members=int(c.get("stuck_members") or 0),
                    status_label=_word(NOTICE_STATUS_LABELS, n.status),
                    unmet=unmet,
                )
            )
        return lines

    def log_lines(self, entries: list[TransitionLog]) -> list[LogLine]:
        self.person_names([e.actor for e in entries] + [e.member_id for e in entries if e.member_id])

        def state(name: str | None) -> str:
            return labels.state_label(name, LOCALE) if name in labels.STATE_LABELS else (name or "—")

        lines = []
        for e in entries:
            change = (
                f"{state(e.from_state)} → {state(e.to_state)}" if e.from_state != e.to_state else state(e.to_state)
            )
            lines.append(
                LogLine(
                    at=_fmt_at(e.at, self.tz),
                    subject=self._who(e.member_id) if e.member_id else "本支部",
                    change=change,
                    cause_label=_word(CAUSE_LABELS, e.cause),
                    actor="系统" if e.actor == "system" else self._who(e.actor),
                    reason=e.reason,
                )
            )
        return lines


# Kinds that are no condition of a phase's exit but belong to one: shown under it in the counts.
_KIND_PHASE: dict[str, str] = {
    "study_self": "study",
    "study_concentrated": "study",
    "admonishment_talk": "consolidation",
    "disposition": "consolidation",
}


@dataclass
class _Chunk:
    ids: list[str]
    members: list[Any]
    member_results: dict[str, list[Result]]
    branch_results: dict[str, list[Result]]
    disposed: set[str]
    meetings: Sequence[tuple[str, str, dt.date, float | None]]
    ballots: Sequence[tuple[str, dt.date, int]]
    counts: Sequence[tuple[str, str, int]]
    log: list[TransitionLog]
    participants: dict[tuple[str, dt.date], int]


def _member_order(m: MemberLine) -> tuple[Any, ...]:
    """A branch page lists the stuck first (most gaps first), then by how far along the main path, then by id."""
    along = ordinal(m.state) if m.state in MAIN_PATH else len(MAIN_PATH)
    return (not m.stuck, -len(m.unmet) if m.stuck else 0, along, m.member_id)


# -- the chart -----------------------------------------------------------------------------------------------------


def _why(stuck: bool, checks: Sequence[Check], members: Sequence[MemberLine]) -> str:
    if stuck:
        return "支部未完成：" + "、".join(c.label for c in checks if not c.ok)
    lacking: dict[str, int] = defaultdict(int)
    for m in members:
        if m.stuck:
            for u in m.unmet:
                if u.condition != "branch":
                    lacking[labels.condition_label(u.condition, LOCALE)] += 1
    ranked = sorted(lacking.items(), key=lambda item: (-item[1], item[0]))
    text = "；".join(f"{label} {n} 人" for label, n in ranked[:3])
    return text + ("等" if len(ranked) > 3 else "")


CHART_WIDTH = 1100.0
CHART_BAR_X = 230.0
CHART_BAR_W = 420.0


@dataclass(frozen=True)
class Chart:
    """The stacked bar chart's geometry (SVG user units): names left, bars, counts, then the reason."""

    height: float
    width: float = CHART_WIDTH
    name_x: float = CHART_BAR_X - 10
    bar_x: float = CHART_BAR_X
    bar_w: float = CHART_BAR_W
    count_x: float = CHART_BAR_X + CHART_BAR_W + 10
    why_x: float = CHART_BAR_X + CHART_BAR_W + 122
    top: float = 44.0
    row_h: float = 30.0
    bar_h: float = 22.0
DARK_STATES = frozenset({"rectification", "consolidation", "pledge", "completed", "referred", "withdrawn", "disqualified"})


def _segments(line: BranchLine, passed: set[str]) -> list[Segment]:
    """The branch's members per state as parts of one 100% bar, main path first, side states after."""
    x = CHART_BAR_X
    out = []
    for state in labels.STATES:
        count = line.by_state.get(state, 0)
        if not count:
            continue
        width = CHART_BAR_W * count / line.members
        out.append(
            Segment(
                state=state,
                label=labels.state_label(state, LOCALE),
                count=count,
                x=round(x, 2),
                width=round(width, 2),
                colour=STATE_COLOURS.get(state, "#94a3b8"),
                stuck=state in passed,
                ink="#ffffff" if state in DARK_STATES else "#1f2933",
            )
        )
        x += width
    return out


# -- the appraisal ---------------------------------------------------------------------------------------------


def _appraisal(lines: list[BranchLine], raw: dict[str, list[Any]], disposed: set[str]) -> AppraisalSummary:
    """Counts per branch and in total, and the named outcomes; `raw` holds only members with an outcome."""
    totals = AppraisalLine("", "合计", "")
    summary_lines: list[AppraisalLine] = []
    excellent: list[Outcome] = []
    withdrawn: list[Outcome] = []
    pending: list[Outcome] = []
    disqualified: list[Outcome] = []
    for branch in lines:
        out = AppraisalLine(branch.branch_id, branch.name, branch.page)
        for m in raw.get(branch.branch_id, []):
            for target in (out, totals):
                if m["rating"]:
                    target.ratings[m["rating"]] = target.ratings.get(m["rating"], 0) + 1
                    if m["final_at"] is not None:
                        target.final += 1
                    elif m["approved_at"] is not None:
                        target.in_publicity += 1
                    else:
                        target.awaiting_approval += 1
                target.excellent += int(bool(m["excellent"]))
                target.withdrawal_pending += int(m["state"] == "withdrawal_pending")
                target.withdrawn += int(m["state"] == "withdrawn")
                if m["state"] == "disqualified":
                    target.disqualified += 1
                    target.disposition_pending += int(m["member_id"] not in disposed)
            who = (m["member_id"], m["name"], branch.name)
            if m["excellent"]:
                excellent.append(Outcome(*who, "优秀共产党员"))
            if m["state"] == "withdrawn":
                withdrawn.append(Outcome(*who, "已批准除名"))
            if m["state"] == "withdrawal_pending":
                note = "支部已确认，待上级党委批准" if m["withdrawal_confirmed_at"] else "待支部确认"
                pending.append(Outcome(*who, note))
            if m["state"] == "disqualified":
                disqualified.append(
                    Outcome(*who, "组织处置已记录" if m["member_id"] in disposed else "组织处置待定")
                )
        summary_lines.append(out)
    return AppraisalSummary(summary_lines, totals, excellent, withdrawn, pending, disqualified)


def _publicity(raw: list[Any], tz: str, at: dt.datetime) -> list[PublicityNotice]:
    """The branch's approved ratings, one notice per approval (a later ballot is approved and published anew)."""
    groups: dict[tuple[dt.datetime, dt.datetime | None], list[Any]] = defaultdict(list)
    for m in raw:
        if m["rating"] and m["approved_at"] is not None:
            ends = as_utc(m["publicity_ends_at"]) if m["publicity_ends_at"] is not None else None
            groups[(as_utc(m["approved_at"]), ends)].append(m)
    notices = []
    for (approved, ends), members in sorted(groups.items(), key=lambda g: g[0][0], reverse=True):
        ordered = sorted(members, key=lambda m: (labels.RATINGS.index(m["rating"]), m["member_id"]))
        notices.append(
            PublicityNotice(
                approved_at=_fmt_at(approved, tz),
                dated=labels.format_date(approved.astimezone(ZoneInfo(tz)).date(), LOCALE),
                starts=_fmt_at(approved, tz),
                ends=_fmt_at(ends, tz) if ends else "",
                days=round((ends - approved).total_seconds() / 86400) if ends else 0,
                over=ends is not None and ends <= at and not any(m["objection_pending"] for m in members),
                items=[
                    PublicityItem(m["member_id"], m["name"], labels.rating_label(m["rating"], LOCALE))
                    for m in ordered
                ],
            )
        )
    return notices


# -- writing -------------------------------------------------------------------------------------------------------

_OURS = re.compile(r"^(index|branch-[A-Za-z0-9_.\-]+|publicity-[A-Za-z0-9_.\-]+)\.html$")


class _Staging:
    """Pages are written to a directory beside the target, then each replaces its old version atomically."""

    def __init__(self, out_dir: Path) -> None:
        out_dir.mkdir(parents=True, exist_ok=True)
        self.out_dir = out_dir
        # Inside the target, so every os.replace stays on one filesystem (and is atomic).
        self.dir = Path(tempfile.mkdtemp(prefix=".report-", dir=out_dir))
        self.names: list[str] = []

    def add(self, name: str, text: str) -> None:
        # Names carry branch ids; ids are checked on import, and this keeps any page inside the directory.
        if not _OURS.match(name):
            raise ValueError(f"not a report page name: {name!r}")
        with open(self.dir / name, "w", encoding="utf-8", newline="\n") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        self.names.append(name)

    def commit(self) -> list[Path]:
        """Replace changed pages (the index last, so it never links a page not there yet), drop stale ones."""
        order = [n for n in self.names if n != "index.html"] + [n for n in self.names if n == "index.html"]
        for name in order:
            fresh, target = self.dir / name, self.out_dir / name
            # Unchanged pages are left alone: a second run at the same T touches nothing.
            if target.exists() and target.read_bytes() == fresh.read_bytes():
                continue
            os.replace(fresh, target)
        keep = set(self.names)
        for old in self.out_dir.iterdir():
            if old.is_file() and _OURS.match(old.name) and old.name not in keep:
                old.unlink()
        first = [n for n in self.names if n == "index.html"]
        return [self.out_dir / n for n in first + [n for n in self.names if n != "index.html"]]

    def discard(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)


def write_report(session: Session, key: str, out_dir: Path, at: dt.datetime) -> list[Path]:
    """Write index.html, branch-<id>.html and publicity-<id>.html for campaign `key` at instant `at`.

    Read-only on the database; idempotent (the same facts and T give the same bytes, and unchanged pages are not
    rewritten); each page replaces its previous version atomically. Returns the pages, the index first.
    """
    report = _Report(session, key, at)
    env = make_environment()
    out_dir = Path(out_dir)
    staging = _Staging(out_dir)
    try:
        _render_all(report, env, staging)
        return staging.commit()
    finally:
        staging.discard()


def _render_all(report: _Report, env: Environment, staging: _Staging) -> None:
    """Branch pages and publicity notices chunk by chunk as they are evaluated, the overview last."""
    branch_template = env.get_template("reports/branch.html.j2")
    publicity_template = env.get_template("reports/publicity.html.j2")
    index_template = env.get_template("reports/index.html.j2")
    timeline = report.timeline()
    escalations = report.escalations()
    secretaries: dict[str, list[str]] = defaultdict(list)
    leaders: list[tuple[str, str, str | None]] = []
    for member_id, name, branch_id, role, email in report.session.execute(
        select(Person.member_id, Person.name, Person.branch_id, Person.role, Person.email)
        .where(Person.role.in_(("branch_secretary", "committee_secretary")))
        .order_by(Person.member_id)
    ):
        if role == "branch_secretary" and branch_id:
            secretaries[branch_id].append(name)
        elif role == "committee_secretary":
            leaders.append((member_id, name, email))
    contact = "；".join(f"{name}（{ROLE_LABELS['committee_secretary']}{'，' + email if email else ''}）"
                       for _id, name, email in leaders)

    lines: list[BranchLine] = []
    stuck_members: list[MemberLine] = []
    stuck_total = 0
    held_by_branch: dict[str, int] = defaultdict(int)
    raw_by_branch: dict[str, list[Any]] = {}
    disposed_all: set[str] = set()
    all_branches = report.branches()
    for branches in _chunks(all_branches, BRANCHES_PER_CHUNK):
        chunk = report.chunk(branches)
        disposed_all |= chunk.disposed
        raw: dict[str, list[Any]] = defaultdict(list)
        for m in chunk.members:
            raw[m["branch_id"]].append(m)
        for branch in branches:
            branch_id = branch[0]
            members = [
                report.member_line(m, chunk.member_results.get(m["member_id"]), chunk.disposed)
                for m in raw.get(branch_id, [])
            ]
            notices = _publicity(raw.get(branch_id, []), report.tz, report.at)
            line = report.branch_line(
                branch, members, chunk.branch_results.get(branch_id), "、".join(secretaries.get(branch_id, [])),
                escalations.get(branch_id, []), bool(notices),
            )
            line.segments = _segments(line, report.passed)
            lines.append(line)
            raw_by_branch[branch_id] = [
                # Only what the overview's appraisal section needs, and only for members with an outcome.
                {k: m[k] for k in ("member_id", "name", "state", "rating", "approved_at", "final_at", "excellent",
                                   "withdrawal_confirmed_at")}
                for m in raw.get(branch_id, [])
                if m["rating"] or m["excellent"] or m["state"] in ("withdrawal_pending", "withdrawn", "disqualified")
            ]
            for m in members:
                if m.stuck:
                    stuck_total += 1
                    if m.held_by_branch_only:
                        held_by_branch[branch_id] += 1
                    elif len(stuck_members) < STUCK_LIST_LIMIT:
                        stuck_members.append(m)
            members.sort(key=_member_order)
            staging.add(
                line.page,
                branch_template.render(
                    campaign=report.info,
                    timeline=timeline,
                    branch=line,
                    members=members,
                    meetings=report.meeting_lines(chunk, branch_id),
                    evidence=report.evidence_counts(chunk, branch_id),
                    escalations=report.escalation_lines(escalations.get(branch_id, [])),
                    log=report.log_lines([e for e in chunk.log if e.branch_id == branch_id]),
                    publicity=line.publicity_page,
                ),
            )
            if notices:
                staging.add(
                    line.publicity_page,
                    publicity_template.render(campaign=report.info, branch=line, notices=notices, contact=contact),
                )

    order = sorted(lines, key=BranchLine.lag_key)
    rank = {line.branch_id: index for index, line in enumerate(order)}
    stuck_members.sort(key=lambda m: (rank.get(m.branch_id, 0), -m.days_stuck, m.member_id))
    by_id = {line.branch_id: line for line in lines}
    appraisal = _appraisal(order, raw_by_branch, disposed_all)
    staging.add(
        "index.html",
        index_template.render(
            campaign=report.info,
            timeline=timeline,
            summary=summary(report.session, report.key, report.at),
            branches=order,
            branch_by_id=by_id,
            stuck_branches=[line for line in order if line.stuck],
            stuck_members=stuck_members,
            stuck_total=stuck_total,
            held_by_branch=[(by_id[b], n) for b, n in sorted(held_by_branch.items(), key=lambda i: rank[i[0]])],
            stuck_limit=STUCK_LIST_LIMIT,
            chart=Chart(height=_chart_height(len(order))),
            chart_legend=_legend(order, report.passed),
            appraisal=appraisal,
            member_diagram=Markup(diagram.svg("member", "zh-CN")),
            branch_diagram=Markup(diagram.svg("branch", "zh-CN")),
        ),
    )


def _chart_height(rows: int) -> float:
    geometry = Chart(height=0.0)
    return geometry.top + rows * geometry.row_h + 12


def _legend(lines: Sequence[BranchLine], passed: set[str]) -> list[Segment]:
    """One swatch per state that occurs, in the chart's order, laid out in one row."""
    present = [s for s in labels.STATES if any(line.by_state.get(s) for line in lines)]
    out, x = [], 0.0
    for state in present:
        label = labels.state_label(state, LOCALE)
        out.append(Segment(state, label, 0, round(x, 1), 0.0, STATE_COLOURS.get(state, "#94a3b8"), state in passed))
        x += 26 + diagram.text_width(label, 12.0) + 14
    return out
