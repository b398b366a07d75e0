"""The appraisal: secret-ballot tallies, the upper committee's approval, publicity, objections, excellence, withdrawal.

Only each member's outcome is stored — never who voted how, nor the counts: no table has a voter or a count column,
and nothing logs a vote.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from states import audit, authority, outbox
from states.clock import as_utc, local_date, parse_date
from states.conditions import RATINGS
from states.engine import Cause
from states.errors import MalformedFile, NoQuorum, NotFound, QuotaExceeded, Refused
from states.evaluate import context, evaluate_member, final_ratings
from states.labels import rating_label, state_label
from states.models import (
    Appraisal,
    BallotMeeting,
    BallotTally,
    Branch,
    Campaign,
    ImportRecord,
    MemberProgress,
    Person,
)
from states.operations import member_of, not_before, step_member
from states.roster import participants
from states.source import Source, check_id, number, rows

BALLOT_COLUMNS = (
    "branch_id",
    "date",
    "entitled",
    "present",
    "member_id",
    "qualified",
    "basically_qualified",
    "unqualified",
)


def standing_rating(qualified: int, basically: int, unqualified: int) -> str | None:
    """The rating with more than half of the votes cast, or None: the ballot is void for that member."""
    cast = qualified + basically + unqualified
    for rating, votes in zip(RATINGS, (qualified, basically, unqualified), strict=True):
        if cast and votes * 2 > cast:
            return rating
    return None


def quorate(entitled: int, present: int) -> bool:
    """Valid only with more than half of the members entitled to vote present."""
    return present * 2 > entitled


def _appraisal(session: Session, key: str, member_id: str) -> Appraisal:
    found = session.get(Appraisal, (key, member_id))
    if found is None:
        found = Appraisal(campaign_key=key, member_id=member_id, objection_pending=False, excellent=False)
        session.add(found)
    return found


@dataclass
class BallotResult:
    meeting_id: int | None = None
    branch_id: str = ""
    ratings: dict[str, str] = field(default_factory=dict)  # member → rating
    void: list[str] = field(default_factory=list)
    unchanged: bool = False


def import_ballot(session: Session, key: str, source: Source, actor: str, at: dt.datetime) -> BallotResult:
    """Record one branch member meeting's ballot; refused whole without quorum or on any impossible figure.
    An act with authority: the secretary of the meeting's branch or a leader."""
    authority.may_change(session, actor)
    campaign = session.get(Campaign, key)
    if campaign is None:
        raise NotFound(zh=f"没有活动 {key!r}", en=f"unknown campaign {key!r}")
    if session.scalar(
        select(ImportRecord.id).where(
            ImportRecord.kind == "ballot", ImportRecord.scope == key, ImportRecord.sha256 == source.sha256
        )
    ):
        return BallotResult(unchanged=True)
    meeting: dict[str, Any] | None = None
    first = 0  # the line of the first tally row: the meeting's own figures are read there
    today = local_date(at, campaign.timezone)
    tallies: dict[str, tuple[int, int, int, int]] = {}

    def count(line: int, column: str, value: str) -> int:
        parsed = number(source, line, column, value, 0, 10_000_000)
        if not parsed.is_integer():
            raise MalformedFile(source.path, line, column, zh=f"{value!r} 不是整数", en=f"{value!r} is not a whole number")
        return int(parsed)

    for line, row in rows(source, BALLOT_COLUMNS):
        try:
            date = parse_date(row["date"])
        except ValueError:
            raise MalformedFile(
                source.path, line, "date", zh=f"{row['date']!r} 不是日期（YYYY-MM-DD、YYYY/M/D 或 YYYY年M月D日）",
                en=f"{row['date']!r} is not a date (YYYY-MM-DD, YYYY/M/D or YYYY年M月D日)",
            ) from None
        if date > today:
            raise MalformedFile(source.path, line, "date", zh=f"会议日期 {date} 晚于 {today}",
                                en=f"the meeting's date {date} is after {today}")
        head = {
            "branch_id": check_id(source, line, "branch_id", row["branch_id"]),
            "date": date,
            "entitled": count(line, "entitled", row["entitled"]),
            "present": count(line, "present", row["present"]),
        }
        if meeting is None:
            meeting, first = head, line
        else:
            for column in ("branch_id", "date", "entitled", "present"):
                if head[column] != meeting[column]:
                    raise MalformedFile(source.path, line, column, zh="与第一条计票行不同：一个文件只记一次会议",
                                        en="differs from the first row: one file is one meeting")
        member_id = check_id(source, line, "member_id", row["member_id"])
        if member_id in tallies:
            raise MalformedFile(source.path, line, "member_id", zh=f"{member_id} 计票两次", en=f"{member_id} is tallied twice")
        q, b, u = (count(line, c, row[c]) for c in ("qualified", "basically_qualified", "unqualified"))
        present = int(str(head["present"]))
        if q + b + u > present:
            raise MalformedFile(source.path, line, "unqualified", zh=f"共投 {q + b + u} 票，但实到只有 {present} 人",
                                en=f"{q + b + u} votes cast but only {present} members present")
        tallies[member_id] = (q, b, u, line)
    if meeting is None:
        raise MalformedFile(source.path, None, None, zh="没有计票行", en="has no tally rows")
    branch_id, entitled, present = meeting["branch_id"], meeting["entitled"], meeting["present"]
    if session.get(Branch, branch_id) is None:
        raise MalformedFile(source.path, first, "branch_id", zh=f"没有党支部 {branch_id!r}", en=f"unknown branch {branch_id!r}")
    authority.over_branch(session, actor, branch_id)
    size = participants(session, branch_id)
    if entitled > size:
        raise MalformedFile(source.path, first, "entitled", zh=f"应到 {entitled} 人，但该党支部只有 {size} 名参加人员",
                            en=f"{entitled} entitled, but the branch has {size} participants")
    if present > entitled:
        raise MalformedFile(source.path, first, "present", zh=f"实到 {present} 人多于应到 {entitled} 人",
                            en=f"{present} present of {entitled} entitled")
    if not quorate(entitled, present):
        raise NoQuorum(
            zh=f"{source.path}：应到 {entitled} 人，实到 {present} 人，未超过半数：会议不足法定人数，须重新召开",
            en=f"{source.path}: {present} of {entitled} entitled members present — not more than "
            "half: the meeting has no quorum and must be held again",
        )
    ctx = context(session, key, at)
    from states.member import advance_edge

    edge = advance_edge("consolidation")
    assert edge is not None
    final = final_ratings(session, key, list(tallies), at)
    for member_id, (_q, _b, _u, line) in tallies.items():
        person = session.get(Person, member_id)
        if person is None:
            raise MalformedFile(source.path, line, "member_id", zh=f"没有党员 {member_id!r}", en=f"unknown member {member_id!r}")
        if person.branch_id != branch_id:
            raise MalformedFile(source.path, line, "member_id", zh=f"{member_id} 不是党支部 {branch_id} 的党员",
                                en=f"{member_id} is not a member of branch {branch_id}")
        here_zh, here_en = f"{source.path} 第{line}行", f"{source.path}, line {line}"
        progress = session.get(MemberProgress, (key, member_id))
        if progress is None or progress.state != "consolidation":
            zh_state = state_label(progress.state, "zh-CN") if progress else "未参加本次活动"
            en_state = progress.state if progress else "no part in the campaign"
            raise Refused(zh=f"{here_zh}：{member_id} 不处于巩固提高阶段（{zh_state}）",
                          en=f"{here_en}: {member_id} is not in consolidation ({en_state})")
        not_before(at, progress.state_since, zh=f"{member_id} 转入巩固提高的时间", en=f"{member_id}'s entry into consolidation")
        applied = {r.condition: r.ok for r in evaluate_member(session, ctx, member_id, edge)}["pledge_application"]
        if not applied:
            raise Refused(zh=f"{here_zh}：{member_id} 没有书面申请，不能评定",
                          en=f"{here_en}: {member_id} has no written application (书面申请) to rate")
        if member_id in final:
            raise Refused(zh=f"{here_zh}：{member_id} 的评定结果已最终确定", en=f"{here_en}: {member_id}'s rating is already final")
        current = session.get(Appraisal, (key, member_id))
        if current is not None:
            not_before(at, current.approved_at or current.rated_at, zh=f"{member_id} 现有的评定结果",
                       en=f"{member_id}'s current rating")
    recorded = BallotMeeting(
        campaign_key=key, branch_id=branch_id, date=meeting["date"], entitled=meeting["entitled"],
        present=meeting["present"], recorded_at=at,
    )
    session.add(recorded)
    session.flush()
    result = BallotResult(meeting_id=recorded.id, branch_id=branch_id)
    for member_id, (q, b, u, _line) in tallies.items():
        rating = standing_rating(q, b, u)
        session.add(BallotTally(meeting_id=recorded.id, member_id=member_id, outcome=rating or "void"))
        if rating is None:
            result.void.append(member_id)
        else:
            result.ratings[member_id] = rating
            appraisal = _appraisal(session, key, member_id)
            appraisal.rating, appraisal.meeting_id, appraisal.rated_at = rating, recorded.id, at
            appraisal.approved_at = appraisal.approved_by = appraisal.publicity_ends_at = None
            appraisal.objection_pending, appraisal.excellent = False, False
        audit.log(
            session, campaign_key=key, member_id=member_id, branch_id=branch_id, from_state="consolidation",
            to_state="consolidation", cause="ballot", actor=actor,
            reason=f"rating: {rating}" if rating else "ballot void: no rating had more than half of the votes", at=at,
        )
    session.add(ImportRecord(kind="ballot", scope=key, sha256=source.sha256, filename=source.path, rows=len(tallies), at=at, actor=actor))
    if result.ratings:
        _queue_approval_requests(session, key, branch_id, recorded.id, meeting["date"], result.ratings, at)
    return result


def _queue_approval_requests(
    session: Session, key: str, branch_id: str, meeting_id: int, date: dt.date, ratings: dict[str, str],
    at: dt.datetime,
) -> None:
    """Every leader who may approve is asked, each in a notice of their own: the dispatcher adds that leader's
    one-time code for this ballot (`states/codes.py`), computed from the key at delivery and never stored."""
    counts = {r: sum(1 for v in ratings.values() if v == r) for r in RATINGS}
    for leader in session.scalars(
        select(Person.member_id).where(Person.role.in_(authority.LEADERS)).order_by(Person.member_id)
    ):
        outbox.queue(
            session, event="approval_requested", campaign=key, recipient_id=leader, subject=branch_id,
            occasion=f"ballot-{meeting_id}",
            context={"branch_id": branch_id, "meeting_id": meeting_id, "ballot_date": date.isoformat(),
                     "rated_members": len(ratings), "counts": counts},
            at=at,
        )


@dataclass
class ApprovalResult:
    approved: list[str] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    withdrawn: list[str] = field(default_factory=list)


def pending_approval(session: Session, key: str, branch_id: str) -> tuple[list[Appraisal], list[Appraisal]]:
    """The branch's current, not yet approved ratings and its confirmed withdrawals awaiting approval."""
    in_branch = select(Person.member_id).where(Person.branch_id == branch_id)
    ratings = list(
        session.scalars(
            select(Appraisal)
            .where(Appraisal.campaign_key == key, Appraisal.member_id.in_(in_branch))
            .where(Appraisal.rating.is_not(None), Appraisal.approved_at.is_(None))
            .order_by(Appraisal.member_id)
        )
    )
    pending_state = select(MemberProgress.member_id).where(
        MemberProgress.campaign_key == key, MemberProgress.state == "withdrawal_pending"
    )
    withdrawals = list(
        session.scalars(
            select(Appraisal)
            .where(Appraisal.campaign_key == key, Appraisal.member_id.in_(in_branch))
            .where(Appraisal.withdrawal_confirmed_at.is_not(None), Appraisal.member_id.in_(pending_state))
            .order_by(Appraisal.member_id)
        )
    )
    return ratings, withdrawals


def approve(
    session: Session,
    key: str,
    branch_id: str,
    actor: str,
    at: dt.datetime,
    *,
    reject: bool = False,
    reason: str = "",
    source: str = "cli",
    flow_run_id: str | None = None,
) -> ApprovalResult:
    """The upper committee's decision on the branch; the CLI and the Prefect approval flow both come here.

    Whichever comes second finds nothing pending and changes nothing (the CLI reports that as a refusal).
    """
    authority.leader(session, actor, zh="批准", en="approve")
    campaign = session.get(Campaign, key)
    if campaign is None:
        raise NotFound(zh=f"没有活动 {key!r}", en=f"unknown campaign {key!r}")
    if session.get(Branch, branch_id) is None:
        raise NotFound(zh=f"没有党支部 {branch_id!r}", en=f"unknown branch {branch_id!r}")
    if reject and not reason.strip():
        raise Refused(zh="退回须写明理由（--reason），党支部据此重新评议", en="a rejection needs a --reason (the branch reviews again)")
    ratings, withdrawals = pending_approval(session, key, branch_id)
    for appraisal in ratings:
        not_before(at, appraisal.rated_at, zh=f"评定 {appraisal.member_id} 的投票", en=f"the ballot rating {appraisal.member_id}")
    for appraisal in withdrawals:
        not_before(at, appraisal.withdrawal_confirmed_at, zh=f"支部确认 {appraisal.member_id} 脱党",
                   en=f"the confirmation of {appraisal.member_id}'s withdrawal")
    result = ApprovalResult()
    note = f"{reason} (via {source})" if reason else f"via {source}"
    for appraisal in ratings:
        if reject:
            appraisal.rating = appraisal.meeting_id = appraisal.rated_at = None
            result.rejected.append(appraisal.member_id)
        else:
            appraisal.approved_at, appraisal.approved_by = at, actor
            appraisal.publicity_ends_at = at + dt.timedelta(days=campaign.publicity_days)
            appraisal.final_at = None
            result.approved.append(appraisal.member_id)
        audit.log(
            session, campaign_key=key, member_id=appraisal.member_id, branch_id=branch_id,
            from_state="consolidation", to_state="consolidation",
            cause="approval_rejected" if reject else "approval", actor=actor, reason=note,
            flow_run_id=flow_run_id, at=at,
        )
    for appraisal in withdrawals:
        if reject:
            appraisal.withdrawal_confirmed_at = appraisal.withdrawal_confirmed_by = None
            audit.log(
                session, campaign_key=key, member_id=appraisal.member_id, branch_id=branch_id,
                from_state="withdrawal_pending", to_state="withdrawal_pending", cause="withdrawal_rejected",
                actor=actor, reason=note, flow_run_id=flow_run_id, at=at,
            )
        else:
            step_member(
                session, key, appraisal.member_id, "withdraw", Cause("withdrawal_approved", actor, note, flow_run_id),
                at, {"withdrawal_confirmed": True, "withdrawal_approved": True},
            )
            result.withdrawn.append(appraisal.member_id)
    session.flush()
    if result.approved:
        _queue_approved(session, key, branch_id, [a for a in ratings if a.member_id in result.approved], at)
    return result


def _queue_approved(session: Session, key: str, branch_id: str, approved: list[Appraisal], at: dt.datetime) -> None:
    secretaries = list(
        session.scalars(select(Person.member_id).where(Person.branch_id == branch_id, Person.role == "branch_secretary"))
    )
    ends = as_utc(approved[0].publicity_ends_at).isoformat() if approved[0].publicity_ends_at else ""
    ratings = [{"member_id": a.member_id, "rating": a.rating} for a in approved]
    for secretary in secretaries:
        outbox.queue(
            session, event="publicity_started", campaign=key, recipient_id=secretary, subject=branch_id,
            occasion=as_utc(at).isoformat(), context={"branch_id": branch_id, "publicity_ends": ends, "ratings": ratings},
            at=at,
        )
    for appraisal in approved:
        if appraisal.rating != "basically_qualified":
            continue
        for recipient in (appraisal.member_id, *secretaries):
            outbox.queue(
                session, event="admonishment_due", campaign=key, recipient_id=recipient, subject=appraisal.member_id,
                occasion=as_utc(at).isoformat(),
                context={"member_id": appraisal.member_id, "branch_id": branch_id,
                         "to_secretary": recipient != appraisal.member_id},
                at=at,
            )


def select_excellent(session: Session, key: str, members: list[str], actor: str, at: dt.datetime) -> list[str]:
    """Qualified members whose rating is final; at most floor(fraction × the branch's rated members), exactly."""
    authority.leader(session, actor, zh="评选优秀共产党员", en="select excellent members")
    campaign = session.get(Campaign, key)
    if campaign is None:
        raise NotFound(zh=f"没有活动 {key!r}", en=f"unknown campaign {key!r}")
    per_branch: dict[str, list[str]] = {}
    final = final_ratings(session, key, list(members), at)
    for member_id in dict.fromkeys(members):
        person, _progress = member_of(session, key, member_id)
        appraisal = session.get(Appraisal, (key, member_id))
        if appraisal is None or appraisal.rating != "qualified":
            raise Refused(zh=f"{member_id} 的评定结果不是{rating_label('qualified', 'zh-CN')}", en=f"{member_id} is not rated qualified")
        if member_id not in final:
            raise Refused(zh=f"{member_id} 的评定结果在 {as_utc(at).isoformat()} 尚未最终确定（公示未结束）",
                          en=f"{member_id}'s rating is not final yet at {as_utc(at).isoformat()} (publicity not over)")
        if appraisal.excellent:
            continue
        per_branch.setdefault(str(person.branch_id), []).append(member_id)
    for branch_id, chosen in per_branch.items():
        in_branch = select(Person.member_id).where(Person.branch_id == branch_id)
        rated = session.scalar(
            select(func.count()).select_from(Appraisal).where(
                Appraisal.campaign_key == key, Appraisal.member_id.in_(in_branch), Appraisal.rating.is_not(None)
            )
        ) or 0
        already = session.scalar(
            select(func.count()).select_from(Appraisal).where(
                Appraisal.campaign_key == key, Appraisal.member_id.in_(in_branch), Appraisal.excellent.is_(True)
            )
        ) or 0
        quota = math.floor(rated * campaign.excellent_num / campaign.excellent_den)  # integers: exact
        if already + len(chosen) > quota:
            share = f"{campaign.excellent_num}/{campaign.excellent_den}"
            raise QuotaExceeded(
                zh=f"党支部 {branch_id}：已评优秀 {already} 名 + 本次 {len(chosen)} 名，超过名额 {quota} 名"
                f"（参评 {rated} 名党员的 {share}）",
                en=f"branch {branch_id}: {already} already excellent + {len(chosen)} > quota {quota} "
                f"({share} of {rated} rated members)",
            )
    selected: list[str] = []
    for branch_id, chosen in per_branch.items():
        for member_id in chosen:
            _appraisal(session, key, member_id).excellent = True
            audit.log(
                session, campaign_key=key, member_id=member_id, branch_id=branch_id, from_state="consolidation",
                to_state="consolidation", cause="excellent", actor=actor, reason="优秀共产党员", at=at,
            )
            selected.append(member_id)
    return selected


def object_to(session: Session, key: str, member_id: str, actor: str, reason: str, at: dt.datetime) -> None:
    """An objection during publicity holds it open until it is resolved."""
    authority.may_change(session, actor)
    person, progress = member_of(session, key, member_id)
    appraisal = session.get(Appraisal, (key, member_id))
    if appraisal is None or appraisal.approved_at is None or member_id in final_ratings(session, key, [member_id], at):
        raise Refused(zh=f"{member_id} 的评定结果不在公示期", en=f"{member_id}'s rating is not in publicity")
    not_before(at, appraisal.approved_at, zh=f"{member_id} 评定结果的批准（公示自此开始）",
               en=f"the approval of {member_id}'s rating (publicity starts there)")
    if appraisal.publicity_ends_at is not None and as_utc(appraisal.publicity_ends_at) <= at:
        ended = as_utc(appraisal.publicity_ends_at).isoformat()
        raise Refused(zh=f"{member_id} 的公示已于 {ended} 结束", en=f"{member_id}'s publicity ended at {ended}")
    if appraisal.objection_pending:
        raise Refused(zh=f"对 {member_id} 评定结果的异议已在处理中", en=f"an objection to {member_id}'s rating is already pending")
    appraisal.objection_pending, appraisal.objected_at = True, at
    audit.log(
        session, campaign_key=key, member_id=member_id, branch_id=person.branch_id, from_state=progress.state,
        to_state=progress.state, cause="objection", actor=actor, reason=reason, at=at,
    )


def resolve(
    session: Session, key: str, member_id: str, upheld: bool, actor: str, reason: str, at: dt.datetime
) -> None:
    """Upheld: back to the ballot (step 2). Dismissed: publicity runs on, ending no earlier than now."""
    authority.leader(session, actor, zh="处理异议", en="resolve an objection")
    person, progress = member_of(session, key, member_id)
    appraisal = session.get(Appraisal, (key, member_id))
    if appraisal is None or not appraisal.objection_pending:
        raise Refused(zh=f"对 {member_id} 的评定结果没有待处理的异议", en=f"no objection to {member_id}'s rating is pending")
    not_before(at, appraisal.objected_at, zh=f"对 {member_id} 评定结果提出的异议", en=f"the objection to {member_id}'s rating")
    appraisal.objection_pending = False
    if upheld:
        appraisal.rating = appraisal.meeting_id = appraisal.rated_at = None
        appraisal.approved_at = appraisal.approved_by = appraisal.publicity_ends_at = None
        appraisal.excellent = False
    elif appraisal.publicity_ends_at is not None and as_utc(appraisal.publicity_ends_at) < at:
        appraisal.publicity_ends_at = at
    audit.log(
        session, campaign_key=key, member_id=member_id, branch_id=person.branch_id, from_state=progress.state,
        to_state=progress.state, cause="objection_upheld" if upheld else "objection_dismissed", actor=actor,
        reason=reason, at=at,
    )


def withdrawal(
    session: Session, key: str, member_id: str, actor: str, reason: str, at: dt.datetime, *, confirm: bool
) -> str:
    """The branch confirms a pending withdrawal (the upper committee then approves it) or accepts a late application."""
    person, progress = member_of(session, key, member_id)
    authority.over_member(session, actor, person)
    if progress.state != "withdrawal_pending":
        raise Refused(zh=f"{member_id} 没有待确认的脱党（当前处于{state_label(progress.state, 'zh-CN')}）",
                      en=f"{member_id} has no pending withdrawal (it is in {progress.state})")
    not_before(at, progress.state_since, zh=f"{member_id} 转入视为自行脱党待确认", en=f"{member_id}'s withdrawal becoming pending")
    if confirm:
        appraisal = _appraisal(session, key, member_id)
        if appraisal.withdrawal_confirmed_at is not None:
            raise Refused(zh=f"{member_id} 的脱党已经确认，待上级党委审批",
                          en=f"{member_id}'s withdrawal is already confirmed; it awaits the upper committee")
        appraisal.withdrawal_confirmed_at, appraisal.withdrawal_confirmed_by = at, actor
        audit.log(
            session, campaign_key=key, member_id=member_id, branch_id=person.branch_id,
            from_state=progress.state, to_state=progress.state, cause="withdrawal_confirmed", actor=actor,
            reason=reason, at=at,
        )
        return progress.state
    from states.member import machine

    edge = machine().edges("accept_late", "withdrawal_pending")[0]
    ctx = context(session, key, at)
    results = {r.condition: r.ok for r in evaluate_member(session, ctx, member_id, edge)}
    if not results["pledge_application"]:
        day = local_date(at, ctx_tz(session, key))
        raise Refused(
            zh=f"{member_id} 没有 {day} 或之前的书面申请：请先导入记录（campaign record import）",
            en=f"{member_id} has no written application (书面申请) dated on or before {day}: "
            "record it first (campaign record import)",
        )
    return step_member(session, key, member_id, "accept_late", Cause("accept_late", actor, reason), at, results)


def ctx_tz(session: Session, key: str) -> str:
    campaign = session.get(Campaign, key)
    return campaign.timezone if campaign else "UTC"
