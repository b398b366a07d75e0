"""The appraisal as the reports show it — ratings (never votes), excellence, withdrawals — and the publicity notices."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from reports.pages import BranchLine
from reports.words import LOCALE, fmt_at
from states import labels
from states.clock import as_utc


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
    unknown: int = 0
    """Members whose appraisal cannot be taken back to a past T: counted here, in no other column."""

    @property
    def any(self) -> bool:
        return bool(
            sum(self.ratings.values()) or self.excellent or self.withdrawal_pending or self.withdrawn
            or self.disqualified or self.unknown
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


def appraisal(lines: list[BranchLine], raw: dict[str, list[Any]], disposed: set[str]) -> AppraisalSummary:
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
                target.unknown += int(m["appraisal_unknown"])
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
                note = (
                    "无法还原此时点的确认情况" if m["appraisal_unknown"]
                    else "支部已确认，待上级党委批准" if m["withdrawal_confirmed_at"] else "待支部确认"
                )
                pending.append(Outcome(*who, note))
            if m["state"] == "disqualified":
                disqualified.append(
                    Outcome(*who, "组织处置已记录" if m["member_id"] in disposed else "组织处置待定")
                )
        summary_lines.append(out)
    return AppraisalSummary(summary_lines, totals, excellent, withdrawn, pending, disqualified)


def publicity(raw: list[Any], tz: str, at: dt.datetime) -> list[PublicityNotice]:
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
                approved_at=fmt_at(approved, tz),
                dated=labels.format_date(approved.astimezone(ZoneInfo(tz)).date(), LOCALE),
                starts=fmt_at(approved, tz),
                ends=fmt_at(ends, tz) if ends else "",
                days=round((ends - approved).total_seconds() / 86400) if ends else 0,
                over=ends is not None and ends <= at and not any(m["objection_pending"] for m in members),
                items=[
                    PublicityItem(m["member_id"], m["name"], labels.rating_label(m["rating"], LOCALE))
                    for m in ordered
                ],
            )
        )
    return notices

