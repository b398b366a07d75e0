"""The campaign as it stood at a past T: progress replayed from the transition log, appraisals taken back to T.

A report at a past T reads these rows in place of the progress and appraisal tables, and the conditions are
evaluated over them with the very same expressions; what cannot be taken back is named (`AsOf.unknown`).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from sqlalchemy import and_, case, false, func, null, or_, select, true
from sqlalchemy.orm import Session, aliased

from states.clock import as_utc
from states.conditions import Row, rating_final
from states.models import (
    Appraisal,
    BranchHistory,
    BranchProgress,
    FiredDeadline,
    MemberProgress,
    Person,
    TransitionLog,
)

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
    # Someone changing branch after T: the pages list people under today's branch, and say so.
    moved = select(BranchHistory.member_id).where(BranchHistory.since > at).limit(1)
    return any(session.execute(q).first() is not None for q in (logged, fired, appraised, moved))


def _moves(t: Any, key: str) -> list[Any]:
    """The log entries that change a state: a move, or a subject's joining (from no state)."""
    return [
        t.campaign_key == key,
        t.to_state.is_not(None),
        or_(t.from_state.is_(None), t.from_state != t.to_state),
    ]


def _loaded(key: str) -> Any:
    tl = TransitionLog
    return select(func.min(tl.at)).where(tl.campaign_key == key, tl.cause == "plan_load").scalar_subquery()


def _members_at(key: str, at: dt.datetime, branch_ids: Sequence[str] | None) -> Any:
    """Member progress (of `branch_ids`' members, or all) with state, since and prior state replayed up to T.

    The last move at or before T (`at` is the decision time; ties by id) gives the state and since when; a member
    with no move by then was in the state their first later move left, since the plan was loaded; one whose first
    move is their joining had not joined yet and is left out; one never moved is as they stand. Each member's two
    entries are found through the log's member index, so the cost grows with the members read, not the log.
    """
    mp = MemberProgress

    def entry(before: bool) -> Any:
        t = aliased(TransitionLog)
        found = select(t.id).where(t.member_id == mp.member_id, *_moves(t, key))
        if before:
            found = found.where(t.at <= at).order_by(t.at.desc(), t.id.desc())
        else:
            found = found.where(t.at > at).order_by(t.at, t.id)
        return found.limit(1).scalar_subquery()

    ids = select(
        mp.campaign_key, mp.member_id, mp.state, mp.state_since, mp.version, mp.prior_state, mp.step,
        entry(True).label("last_id"), entry(False).label("next_id"),
    ).where(mp.campaign_key == key)
    if branch_ids is not None:
        ids = ids.where(mp.member_id.in_(select(Person.member_id).where(Person.branch_id.in_(branch_ids))))
    row = ids.subquery()
    last, following = aliased(TransitionLog), aliased(TransitionLog)
    moved, later = row.c.last_id.is_not(None), row.c.next_id.is_not(None)
    return (
        select(
            row.c.campaign_key,
            row.c.member_id,
            case((moved, last.to_state), (later, following.from_state), else_=row.c.state).label("state"),
            case((moved, last.at), (later, _loaded(key)), else_=row.c.state_since).label("state_since"),
            row.c.version,
            case((moved, last.from_state), (later, null()), else_=row.c.prior_state).label("prior_state"),
            row.c.step,
        )
        .outerjoin(last, last.id == row.c.last_id)
        .outerjoin(following, following.id == row.c.next_id)
        .where(~and_(~moved, later, following.from_state.is_(None)))
        .subquery()
    )


def _branch_states(session: Session, key: str, at: dt.datetime) -> dict[str, tuple[str, dt.datetime | None]]:
    """Each branch's state and since when at T, by the rule of `_members_at`, from one pass over its moves."""
    tl = TransitionLog
    loaded = session.scalar(select(_loaded(key)))
    before: dict[str, tuple[str, dt.datetime]] = {}
    after: dict[str, str | None] = {}
    for branch_id, from_state, to_state, when in session.execute(
        select(tl.branch_id, tl.from_state, tl.to_state, tl.at)
        .where(tl.member_id.is_(None), tl.branch_id.is_not(None), *_moves(tl, key))
        .order_by(tl.at, tl.id)
    ):
        if branch_id is None or to_state is None:
            continue
        if as_utc(when) <= at:
            before[branch_id] = (to_state, when)
        elif branch_id not in after:
            after[branch_id] = from_state
    found: dict[str, tuple[str, dt.datetime | None]] = dict(before)
    for branch_id, from_state in after.items():
        if branch_id not in found and from_state is not None:
            found[branch_id] = (from_state, loaded)
    return found


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
        self.key, self.at = key, as_utc(at)
        self.branch_states = _branch_states(session, key, self.at)
        """The branches whose state at T the log tells (the others have not moved since: as they stand)."""
        self.appraisal = aliased(Appraisal, _appraisal_at(key, self.at), adapt_on_names=True)
        self.unknown = self._unknown(session, key, self.at)
        """Members whose appraisal record cannot be taken back to T: a decision after T cleared or overwrote it."""

    def members(self, branch_ids: Sequence[str] | None = None) -> Any:
        """Member progress at T, of the members of `branch_ids` (None: all)."""
        return aliased(MemberProgress, _members_at(self.key, self.at, branch_ids), adapt_on_names=True)

    def branches(self, branch_ids: Sequence[str]) -> Any:
        """Branch progress at T of `branch_ids` (a chunk: their states are written into the statement)."""
        bp = BranchProgress
        known = {b: self.branch_states[b] for b in branch_ids if b in self.branch_states}
        state: Any = bp.state
        since: Any = bp.state_since
        if known:
            state = case({b: s for b, (s, _t) in known.items()}, value=bp.branch_id, else_=bp.state)
            since = case({b: t for b, (_s, t) in known.items()}, value=bp.branch_id, else_=bp.state_since)
        return aliased(
            BranchProgress,
            select(bp.campaign_key, bp.branch_id, state.label("state"), since.label("state_since"), bp.version, bp.step)
            .where(bp.campaign_key == self.key, bp.branch_id.in_(branch_ids))
            .subquery(),
            adapt_on_names=True,
        )

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

    def row(self, branch_ids: Sequence[str]) -> Row:
        """A `Row` over the members and branches of `branch_ids` as they were at T (the person as registered)."""
        row = Row()
        row.mp, row.bp, row.appraisal = self.members(branch_ids), self.branches(branch_ids), self.appraisal
        return row
