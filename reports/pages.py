"""The pages' models: each member, branch, meeting, count, escalation and log entry as a report shows it, in Chinese."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from reports import charts
from reports.charts import Segment
from reports.data import BranchRow, Chunk, Facts
from reports.words import (
    CAUSE_LABELS,
    KIND_PHASE,
    LOCALE,
    NOTICE_STATUS_LABELS,
    ROLE_LABELS,
    fmt_at,
    kind_label,
    word,
)
from states import branch as branch_machine
from states import labels
from states import member as member_machine
from states.evaluate import Result
from states.labels import Figure
from states.machine import MAIN_PATH, PHASES, ordinal
from states.models import Notice, Phase, TransitionLog
from states.records import BRANCH_KINDS, MEMBER_KINDS


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


@dataclass(frozen=True)
class CampaignInfo:
    key: str
    title: str
    timezone: str
    at: str
    at_date: str
    caveats: tuple[str, ...] = ()
    """At a past T: how the page was taken back to T, and what could not be (shown at the top of every page)."""


APPRAISAL_CONDITIONS = frozenset({"member_meeting_ballot", "approval", "publicity", "qualified", "unqualified", "followup"})
"""The member conditions that read the appraisal record: not shown where it cannot be taken back to T."""
APPRAISAL_UNKNOWN = "评议情况：此时点之后有退回、异议处理或重新表决，无法还原此时点的评定"


# -- from facts to lines ------------------------------------------------------------------------------------------


def unmet_lines(results: Iterable[Result]) -> list[Unmet]:
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


def _phase_of(day: dt.date, windows: Sequence[Phase]) -> str:
    for phase in windows:
        if phase.start <= day <= phase.end:
            return labels.phase_label(phase.name, LOCALE)
    return "—"


def member_order(m: MemberLine) -> tuple[Any, ...]:
    """A branch page lists the stuck first (most gaps first), then by how far along the main path, then by id."""
    along = ordinal(m.state) if m.state in MAIN_PATH else len(MAIN_PATH)
    return (not m.stuck, -len(m.unmet) if m.stuck else 0, along, m.member_id)


def why(stuck: bool, checks: Sequence[Check], members: Sequence[MemberLine]) -> str:
    """Why a branch lags, in one line for the chart: its own gaps, else what its stuck members lack most."""
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


class Pages:
    """The lines of one report run, built from its facts."""

    def __init__(self, facts: Facts) -> None:
        self.facts = facts
        self.info = CampaignInfo(
            key=facts.key,
            title=facts.campaign.title,
            timezone=facts.tz,
            at=fmt_at(facts.at, facts.tz),
            at_date=labels.format_date(facts.ctx.cutoff, LOCALE),
            caveats=self._caveats(),
        )

    def _caveats(self) -> tuple[str, ...]:
        facts = self.facts
        if facts.as_of is None:
            return ()
        at, day = fmt_at(facts.at, facts.tz), labels.format_date(facts.ctx.cutoff, LOCALE)
        found = [
            f"此后又有新的决定和变更：本报告按变更记录把党员和党支部的状态回放到{at}；记录按日期计入（截至{day}，"
            "含此后才导入、日期在此之前的记录）。",
            "党员姓名、职务和联系方式为当前登记的信息；督办通知的发送状态为当前状态，无法还原此时点的发送情况。",
        ]
        if facts.as_of.unknown:
            found.append(
                f"{len(facts.as_of.unknown)} 名党员的评议记录在此时点之后有退回、异议处理或重新表决，"
                "无法还原此时点的评定，报告中不显示其评定及相关条件。"
            )
        moved = facts.transferred_after()
        if moved:
            found.append(f"此时点之后有 {moved} 名党员转接组织关系，按现所在党支部列出。")
        return tuple(found)

    def _days(self, since: dt.datetime | None) -> int:
        return max(0, (self.facts.at - since).days) if since is not None else 0

    def _who(self, person_id: str) -> str:
        name = self.facts.names.get(person_id)
        return f"{name}（{person_id}）" if name else person_id

    def member_line(self, m: Any, results: list[Result] | None, disposed: set[str]) -> MemberLine:
        stuck, since = self.facts.stuck_since(m["state"], m["state_since"])
        notes: list[str] = []
        if m["state"] in ("exempt", "referred") and m["prior_state"]:
            notes.append(f"原状态：{labels.state_label(m['prior_state'], LOCALE)}")
        if m["appraisal_unknown"]:
            notes.append(APPRAISAL_UNKNOWN)
        elif m["rating"]:
            rating = labels.rating_label(m["rating"], LOCALE)
            if m["final_at"] is not None:
                notes.append(f"评定：{rating}（已确定）")
            elif m["approved_at"] is not None:
                pending = "，有异议待处理" if m["objection_pending"] else ""
                notes.append(f"评定：{rating}（公示至 {fmt_at(m['publicity_ends_at'], self.facts.tz)}{pending}）")
            else:
                notes.append(f"评定：{rating}（待上级党委审批）")
        if m["excellent"]:
            notes.append("优秀共产党员")
        if m["state"] == "withdrawal_pending" and not m["appraisal_unknown"]:
            notes.append("支部已确认，待上级党委批准" if m["withdrawal_confirmed_at"] else "待支部确认")
        if m["state"] == "disqualified":
            notes.append("组织处置：已记录" if m["member_id"] in disposed else "组织处置：待定")
        return MemberLine(
            member_id=m["member_id"],
            name=m["name"],
            role=m["role"],
            role_label=word(ROLE_LABELS, m["role"]),
            branch_id=m["branch_id"],
            state=m["state"],
            state_label=labels.state_label(m["state"], LOCALE),
            since=fmt_at(m["state_since"], self.facts.tz),
            stuck=stuck,
            stuck_since=fmt_at(since, self.facts.tz),
            days_stuck=self._days(since),
            # Until the deadline, "the branch has not moved on" is true of every member and says nothing;
            # once stuck, it is the reason (or one of them) a member waits.
            unmet=[
                u
                for u in unmet_lines(results or [])
                if (stuck or u.condition != "branch")
                and not (m["appraisal_unknown"] and u.condition in APPRAISAL_CONDITIONS)
            ],
            notes=notes,
        )

    def branch_line(
        self,
        branch: BranchRow,
        members: list[MemberLine],
        results: list[Result] | None,
        secretary: str,
        escalations: list[Notice],
        publicity: bool,
    ) -> BranchLine:
        branch_id, name, unit, state, state_since = branch
        stuck, since = self.facts.stuck_since(state, state_since)
        short = charts.short_name(name)
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
            stuck_since=fmt_at(since, self.facts.tz),
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
            marker_x=charts.marker_x(short),
            why=why(stuck, checks, members),
        )

    def meeting_lines(self, chunk: Chunk, branch_id: str) -> list[MeetingLine]:
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
                    phase_label=_phase_of(day, self.facts.windows),
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

    def evidence_counts(self, chunk: Chunk, branch_id: str) -> list[EvidencePhase]:
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
            return phase_rank.get(phase_of_kind.get(kind) or KIND_PHASE.get(kind, ""), len(PHASES))

        for kind in sorted(kinds, key=lambda k: (rank(k), k not in BRANCH_KINDS)):
            phase = phase_of_kind.get(kind) or KIND_PHASE.get(kind, "")
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
        self.facts.person_names(n.recipient_id for n in notices)
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
                    queued_at=fmt_at(n.queued_at, self.facts.tz),
                    phase_label=labels.phase_label(str(c.get("phase")), LOCALE) if c.get("phase") in PHASES else "—",
                    level_label=labels.level_label(level, LOCALE) if level in labels.LEVELS else level,
                    role_label=labels.level_role(level, LOCALE) if level in labels.LEVELS else "",
                    recipient=self._who(n.recipient_id),
                    days_stuck=int(c.get("days_stuck") or 0),
                    stuck_members=int(c.get("stuck_members") or 0),
                    status_label=word(NOTICE_STATUS_LABELS, n.status),
                    unmet=unmet,
                )
            )
        return lines

    def log_lines(self, entries: list[TransitionLog]) -> list[LogLine]:
        self.facts.person_names([e.actor for e in entries] + [e.member_id for e in entries if e.member_id])

        def state(name: str | None) -> str:
            return labels.state_label(name, LOCALE) if name in labels.STATE_LABELS else (name or "—")

        lines = []
        for e in entries:
            change = (
                f"{state(e.from_state)} → {state(e.to_state)}" if e.from_state != e.to_state else state(e.to_state)
            )
            lines.append(
                LogLine(
                    at=fmt_at(e.at, self.facts.tz),
                    subject=self._who(e.member_id) if e.member_id else "本支部",
                    change=change,
                    cause_label=word(CAUSE_LABELS, e.cause),
                    actor="系统" if e.actor == "system" else self._who(e.actor),
                    reason=e.reason,
                )
            )
        return lines

