"""The campaign as it stood at a past T: progress replayed from the transition log, appraisals taken back to T.

A report at a past T reads these rows in place of the progress and appraisal tables, and the conditions are
evaluated over them with the very same expressions; what cannot be taken back is named (`AsOf.unknown`).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from typing import Any

from sqlalchemy import and_, case, false, func, null, or_, select, true
from sqlalchemy.orm import Session, aliased

from states.conditions import Row, rating_final
from states.models import Appraisal, BranchProgress, FiredDeadline, MemberProgress, TransitionLog

APPRAISAL_CAUSES = (
    "ballot", "approval", "approval_rejected", "excellent", "objection", "objection_upheld", "objection_dismissed",
    "withdrawal_confirmed", "withdrawal_rejected",
)
UNDOING_CAUSES = frozenset(
    {"approval_rejected", "objection", "objection_upheld", "objection_dismissed", "withdrawal_rejected"}
)
"""Appraisal decisions that clear or overwrite what was there: after T, the record no longer says what it was at T."""


def changed_after(session: Session, key: str, at: dt.datetime) -> bool:
    """Whether anything a report shows was decided after T: then the rows as they stand are not the rows at T."""
    logged = select(TransitionLog.id).where(TransitionLog.campaign_key == key, TransitionLog.at > at).limit(1)
    fired = select(FiredDeadline.name).where(FiredDeadline.campaign_key == key, FiredDeadline.fired_at > at).limit(1)
    a = Appraisal
    appraised = (
        select(a.member_id)
        .where(
            a.campaign_key == key,
            or_(a.rated_at > at, a.approved_at > at, a.final_at > at, a.withdrawal_confirmed_at > at),
        )
        .limit(1)
    )
    return any(session.execute(q).first() is not None for q in (logged, fired, appraised))


def _replayed(key: str, at: dt.datetime, progress: Any, subject: Any, members: bool) -> Any:
    """`progress` (member or branch) with state, since and prior state replayed from the log up to T.

    The last move at or before T (`at` is the decision time; ties by id) gives the state and since when; a subject
    with no move by then was in the state its first later move left, since the plan was loaded; one whose first move
    is its joining had not joined yet and is left out; one never moved is as it stands.
    """
    tl = TransitionLog
    moves = [
        tl.campaign_key == key,
        tl.member_id.is_not(None) if members else tl.member_id.is_(None),
        subject(tl).is_not(None),
        tl.to_state.is_not(None),
        or_(tl.from_state.is_(None), tl.from_state != tl.to_state),
    ]
    before = (
        select(
            subject(tl).label("subject"), tl.from_state, tl.to_state, tl.at,
            func.row_number().over(partition_by=subject(tl), order_by=(tl.at.desc(), tl.id.desc())).label("rn"),
        )
        .where(*moves, tl.at <= at)
        .subquery()
    )
    after = (
        select(
            subject(tl).label("subject"), tl.from_state,
            func.row_number().over(partition_by=subject(tl), order_by=(tl.at, tl.id)).label("rn"),
        )
        .where(*moves, tl.at > at)
        .subquery()
    )
    last = select(before).where(before.c.rn == 1).subquery()
    first_after = select(after).where(after.c.rn == 1).subquery()
    moved, later = last.c.subject.is_not(None), first_after.c.subject.is_not(None)
    loaded = select(func.min(tl.at)).where(tl.campaign_key == key, tl.cause == "plan_load").scalar_subquery()
    columns = [
        progress.campaign_key,
        subject(progress),
        case((moved, last.c.to_state), (later, first_after.c.from_state), else_=progress.state).label("state"),
        # A state left by its first later move without an earlier move is the one the plan's loading gave it.
        case((moved, last.c.at), (later, loaded), else_=progress.state_since).label("state_since"),
        progress.version,
    ]
    if members:
        columns.append(
            case((moved, last.c.from_state), (later, null()), else_=progress.prior_state).label("prior_state")
        )
    columns.append(progress.step)
    return (
        select(*columns)
        .outerjoin(last, last.c.subject == subject(progress))
        .outerjoin(first_after, first_after.c.subject == subject(progress))
        .where(progress.campaign_key == key, ~and_(~moved, later, first_after.c.from_state.is_(None)))
        .subquery()
    )


def _appraisal_at(key: str, at: dt.datetime) -> Any:
    """The appraisal records with every step taken after T taken back (a rating, its approval, finality,
    excellence, a confirmed withdrawal): what they said at T, unless an undoing decision followed (see `unknown`)."""
    a, tl = Appraisal, TransitionLog
    excellent_later = (
        select(tl.id)
        .where(tl.campaign_key == key, tl.member_id == a.member_id, tl.cause == "excellent", tl.at > at)
        .exists()
    )
    rated, approved = a.rated_at <= at, a.approved_at <= at
    return (
        select(
            a.campaign_key,
            a.member_id,
            case((rated, a.rating), else_=null()).label("rating"),
            case((rated, a.meeting_id), else_=null()).label("meeting_id"),
            case((rated, a.rated_at), else_=null()).label("rated_at"),
            case((approved, a.approved_at), else_=null()).label("approved_at"),
            case((approved, a.approved_by), else_=null()).label("approved_by"),
            case((approved, a.publicity_ends_at), else_=null()).label("publicity_ends_at"),
            case((approved, a.objection_pending), else_=false()).label("objection_pending"),
            case((a.final_at <= at, a.final_at), else_=null()).label("final_at"),
            case((and_(a.excellent, rating_final(a, at), ~excellent_later), true()), else_=false()).label("excellent"),
            case((a.withdrawal_confirmed_at <= at, a.withdrawal_confirmed_at), else_=null())
            .label("withdrawal_confirmed_at"),
            case((a.withdrawal_confirmed_at <= at, a.withdrawal_confirmed_by), else_=null())
            .label("withdrawal_confirmed_by"),
            a.step,
        )
        .where(a.campaign_key == key)
        .subquery()
    )


class AsOf:
    """The progress and appraisal tables as they stood at a past T, as aliases the conditions' expressions and the
    report's own queries read in place of the tables (the same expressions, over the rows of T)."""

    def __init__(self, session: Session, key: str, at: dt.datetime) -> None:
        self.mp = aliased(
            MemberProgress, _replayed(key, at, MemberProgress, lambda t: t.member_id, True), adapt_on_names=True
        )
        self.bp = aliased(
            BranchProgress, _replayed(key, at, BranchProgress, lambda t: t.branch_id, False), adapt_on_names=True
        )
        self.appraisal = aliased(Appraisal, _appraisal_at(key, at), adapt_on_names=True)
        self.unknown = self._unknown(session, key, at)
        """Members whose appraisal record cannot be taken back to T: a decision after T cleared or overwrote it."""

    @staticmethod
    def _unknown(session: Session, key: str, at: dt.datetime) -> set[str]:
        tl = TransitionLog
        seen: dict[str, set[tuple[str, bool]]] = defaultdict(set)
        for member_id, cause, later in session.execute(
            select(tl.member_id, tl.cause, tl.at > at).where(
                tl.campaign_key == key, tl.member_id.is_not(None), tl.cause.in_(APPRAISAL_CAUSES)
            )
        ):
            if member_id is not None:
                seen[member_id].add((cause, bool(later)))
        unknown = set()
        for member_id, entries in seen.items():
            undone = any(later and cause in UNDOING_CAUSES for cause, later in entries)
            # A second ballot or approval after T replaced the first one's figures and times.
            replaced = any(
                (cause, True) in entries and (cause, False) in entries for cause in ("ballot", "approval")
            )
            if undone or replaced:
                unknown.add(member_id)
        return unknown

    def row(self) -> Row:
        """A `Row` whose progress, branch progress and appraisal are those of T (the person is as registered)."""
        row = Row()
        row.mp, row.bp, row.appraisal = self.mp, self.bp, self.appraisal
        return row
