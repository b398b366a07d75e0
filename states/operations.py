"""Operator actions on members: retry, exempt, refer and resume — each checked, logged and sealed."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from states import audit, authority, counts
from states import branch as branch_machine
from states import member as member_machine
from states.clock import as_utc
from states.db import changed
from states.engine import Cause, move_branches, move_members
from states.errors import ConditionsUnmet, NotFound, Refused, Unauthorized
from states.evaluate import branches_of, context, of_branch_ids, of_members
from states.labels import cause_label, role_label, state_label
from states.machine import PHASES, Subject
from states.models import BranchProgress, MemberProgress, Person
from states.status import member_view, passed_phases
from states.sweep import _enter_phase_notices, fired, invite_to_oath


def not_before(at: dt.datetime, grounds: dt.datetime | None, *, zh: str, en: str) -> None:
    """A decision cannot predate what it decides on (`zh`/`en`: an approval its ballot, a resolution its objection,
    an action the subject's last change): refused with one line, in simulated time as in real time."""
    if grounds is not None and as_utc(at) < as_utc(grounds):
        decided, earlier = as_utc(at).isoformat(), as_utc(grounds).isoformat()
        raise Refused(
            zh=f"决定时间 {decided} 不能早于{zh}（{earlier}）",
            en=f"a decision at {decided} cannot predate {en} at {earlier}",
        )


def _state(name: str) -> str:
    return state_label(name, "zh-CN")


def member_of(session: Session, key: str, member_id: str) -> tuple[Person, MemberProgress]:
    person = session.get(Person, member_id)
    if person is None:
        raise NotFound(zh=f"没有党员 {member_id!r}", en=f"unknown member {member_id!r}")
    progress = session.get(MemberProgress, (key, member_id))
    if progress is None:
        raise NotFound(zh=f"党员 {member_id!r} 未参加活动 {key!r}", en=f"member {member_id!r} takes no part in campaign {key!r}")
    return person, progress


def step_member(
    session: Session,
    key: str,
    member_id: str,
    trigger: str,
    cause: Cause,
    at: dt.datetime,
    results: dict[str, bool] | None = None,
) -> str:
    """Fire one trigger on one member through the Machine; compare-and-set the row; log it. Returns the new state."""
    _person, progress = member_of(session, key, member_id)
    not_before(at, progress.state_since, zh=f"{member_id} 上一次变动（{_state(progress.state)}）",
               en=f"{member_id}'s last change ({progress.state})")
    subject = Subject(progress.state, results or {}, prior=progress.prior_state)
    before, version = progress.state, progress.version
    if not member_machine.machine().fire(subject, trigger):
        raise ConditionsUnmet(
            zh=f"{member_id}：处于{_state(before)}，条件不满足，不能{cause_label(cause.cause, 'zh-CN')}",
            en=f"{member_id}: '{trigger}' is refused from '{before}': its conditions do not hold",
        )
    values: dict[str, Any] = {"state": subject.state, "state_since": at, "version": version + 1}
    if subject.state in ("exempt", "referred"):
        values["prior_state"] = before
    elif before in ("exempt", "referred"):
        values["prior_state"] = None
    moved = changed(session.execute(
        update(MemberProgress)
        .where(
            MemberProgress.campaign_key == key,
            MemberProgress.member_id == member_id,
            MemberProgress.state == before,
            MemberProgress.version == version,
        )
        .values(**values)
        .execution_options(synchronize_session=False)
    ))
    if not moved:
        raise Refused(zh=f"{member_id} 在办理期间已被他人更改：请查看后重试",
                      en=f"{member_id} changed while this action ran; look again and retry")
    counts.shift(session, key, "member", before, subject.state, 1)
    session.expire(progress)
    audit.log(
        session, campaign_key=key, member_id=member_id, branch_id=_person.branch_id, from_state=before,
        to_state=subject.state, cause=cause.cause, trigger=trigger, actor=cause.actor, reason=cause.reason,
        flow_run_id=cause.flow_run_id, at=at,
    )
    return subject.state


def exempt(session: Session, key: str, member_id: str, actor: str, reason: str, at: dt.datetime, undo: bool = False) -> str:
    person, progress = member_of(session, key, member_id)
    authority.over_member(session, actor, person)
    trigger = "unexempt" if undo else "exempt"
    if undo and progress.state != "exempt":
        raise Refused(zh=f"{member_id} 未被免予参加（当前处于{_state(progress.state)}）",
                      en=f"{member_id} is not exempt (it is in {progress.state})")
    if not undo and progress.state not in member_machine.ACTIVE:
        raise Refused(zh=f"{member_id} 处于{_state(progress.state)}，不能免予参加",
                      en=f"{member_id} is in {progress.state}: it cannot be exempted")
    return step_member(session, key, member_id, trigger, Cause("exempt_undo" if undo else "exempt", actor, reason), at)


def refer(session: Session, key: str, member_id: str, actor: str, reason: str, at: dt.datetime) -> str:
    person, progress = member_of(session, key, member_id)
    authority.over_member(session, actor, person)
    if progress.state not in member_machine.ACTIVE:
        raise Refused(zh=f"{member_id} 处于{_state(progress.state)}，不能移交处理",
                      en=f"{member_id} is in {progress.state}: it cannot be referred")
    return step_member(session, key, member_id, "refer", Cause("refer", actor, reason), at)


def resume(session: Session, key: str, member_id: str, actor: str, reason: str, at: dt.datetime) -> str:
    person, progress = member_of(session, key, member_id)
    authority.over_member(session, actor, person)
    if progress.state != "referred":
        raise Refused(zh=f"{member_id} 未被移交处理（当前处于{_state(progress.state)}）",
                      en=f"{member_id} is not referred (it is in {progress.state})")
    return step_member(session, key, member_id, "resume", Cause("resume", actor, reason), at)


@dataclass
class RetryResult:
    advanced: dict[str, list[str]] = field(default_factory=dict)  # id → states passed through
    held: dict[str, dict[str, Any]] = field(default_factory=dict)  # id → state and unmet conditions
    moved_members: int = 0
    moved_branches: int = 0


def advance_scope(
    session: Session, key: str, at: dt.datetime, cause: Cause, members: list[str] | None, branches: list[str] | None
) -> tuple[int, int]:
    """The stuck pass for a scope: phase by phase, branches then members, as far as conditions allow at T."""
    ctx = context(session, key, at)
    done = fired(session, key)
    moved_b = moved_m = 0
    for phase in PHASES:
        if phase not in done:
            break
        if branches is not None:
            edge = branch_machine.advance_edge(phase)
            assert edge is not None
            branch_step, branches_moved = move_branches(
                session, ctx, edge, branches_of(branches), cause
            )
            moved_b += branches_moved
        edge = member_machine.advance_edge(phase)
        assert edge is not None
        scope = of_members(members) if members is not None else of_branch_ids(branches or [])
        step, n = move_members(session, ctx, edge, scope, cause)
        moved_m += n
        if n:
            _enter_phase_notices(session, ctx, key, step, edge.dest, scope)
        if branches is not None:
            invite_to_oath(session, ctx, key, phase, branch_step, branches_moved)
    return moved_m, moved_b


def retry(
    session: Session,
    key: str,
    actor: str,
    reason: str,
    at: dt.datetime,
    members: list[str] | None = None,
    branches: list[str] | None = None,
    all_stuck: bool = False,
    flow_run_id: str | None = None,
) -> RetryResult:
    """Re-check and advance the named members or branches (or every stuck one the actor may act on)."""
    person = authority.may_change(session, actor)
    result = RetryResult()
    if all_stuck:
        if person.role in authority.LEADERS:
            branches = list(session.scalars(select(BranchProgress.branch_id).where(BranchProgress.campaign_key == key)))
        elif person.role == "branch_secretary" and person.branch_id:
            branches = [person.branch_id]
        else:
            raise Unauthorized(
                zh=f"{actor}（{role_label(person.role, 'zh-CN')}）无权重新检查全部滞留党员：须由党支部书记或上级党委办理",
                en=f"{actor} ({person.role}) may not retry every stuck member: a branch secretary or a leader may",
            )
    for branch_id in branches or []:
        if session.get(BranchProgress, (key, branch_id)) is None:
            raise NotFound(zh=f"党支部 {branch_id!r} 未参加活动 {key!r}", en=f"branch {branch_id!r} takes no part in campaign {key!r}")
        authority.over_branch(session, actor, branch_id)
    before: dict[str, str] = {}
    for member_id in members or []:
        target, progress = member_of(session, key, member_id)
        authority.over_member(session, actor, target)
        not_before(at, progress.state_since, zh=f"{member_id} 上一次变动（{_state(progress.state)}）",
               en=f"{member_id}'s last change ({progress.state})")
        before[member_id] = progress.state
    if branches:
        # One aggregate over the scope: a retry at T cannot move anyone whose last change is later than T.
        latest = max(
            (
                t for t in (
                    session.scalar(select(func.max(BranchProgress.state_since)).where(
                        BranchProgress.campaign_key == key, BranchProgress.branch_id.in_(branches))),
                    session.scalar(select(func.max(MemberProgress.state_since)).where(
                        MemberProgress.campaign_key == key,
                        MemberProgress.member_id.in_(select(Person.member_id).where(Person.branch_id.in_(branches))))),
                ) if t is not None
            ),
            key=as_utc,
            default=None,
        )
        not_before(at, latest, zh="所涉党支部的最近一次变动", en="the last change in the branches it covers")
    cause = Cause("retry", actor, reason, flow_run_id)
    if members:
        result.moved_members, _ = advance_scope(session, key, at, cause, members, None)
    if branches:
        moved_m, result.moved_branches = advance_scope(session, key, at, cause, None, branches)
        result.moved_members += moved_m
    if all_stuck and result.moved_members == 0 and result.moved_branches == 0:
        # `--all-stuck` succeeds even when it moves nobody, and an operator action that succeeds is audited.
        # (A retry of named subjects that moves nobody is refused instead, and changes nothing.)
        audit.log(
            session, campaign_key=key, member_id=None,
            branch_id=person.branch_id if person.role == "branch_secretary" else None,
            from_state=None, to_state=None, cause="retry", trigger="retry", actor=actor,
            reason=f"{reason} (all stuck: nobody could move)", flow_run_id=flow_run_id, at=at,
        )
    session.flush()
    for member_id, state in before.items():
        now = session.scalar(
            select(MemberProgress.state).where(MemberProgress.campaign_key == key, MemberProgress.member_id == member_id)
        )
        if now != state:
            result.advanced[member_id] = [state, str(now)]
        else:
            view = member_view(session, key, member_id, at)
            if not view["stuck"]:
                view["unmet"] = view["unmet"] or []
                view["why"] = "not stuck: its phase's deadline has not passed"
            result.held[member_id] = {"state": state, "unmet": view["unmet"], **({"why": view["why"]} if "why" in view else {})}
    passed = set(passed_phases(session, key, at))
    for branch_id in branches or []:
        branch_state = session.scalar(
            select(BranchProgress.state).where(BranchProgress.campaign_key == key, BranchProgress.branch_id == branch_id)
        )
        if branch_state in passed and not all_stuck:
            result.held[branch_id] = {"state": branch_state}
    return result


__all__ = ["exempt", "refer", "resume", "retry", "step_member", "member_of", "not_before"]
