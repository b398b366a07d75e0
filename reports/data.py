"""What a report reads from the database: the campaign's facts at T, branch by branch, in a few set-based queries.

Everything here reads: the conditions are evaluated by the core's own expressions (`states.evaluate`), set-based,
one statement per phase for a chunk of branches, so a branch of 5,000 members costs a handful of queries rather
than one per member. The appraisal is read by its ratings only: nothing here reads a ballot's tallies.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import case, func, null, or_, select
from sqlalchemy.orm import Session, aliased

from reports.history import AsOf, changed_after
from states import branch as branch_machine
from states import member as member_machine
from states.clock import as_utc, day_start
from states.conditions import EvalContext, Row, rating_final
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
from states.machine import PHASES, Transition
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
from states.records import MEETINGS
from states.status import passed_phases, phase_at, summary

T = TypeVar("T")

BRANCHES_PER_CHUNK = 200
"""Branches evaluated together: one statement per phase for all their members, then their pages are written."""

BranchRow = tuple[str, str, str, str, dt.datetime | None]
"""A branch as the report reads it: id, name, unit, state, since."""


def chunks(items: Sequence[T], size: int) -> Iterator[list[T]]:
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


# -- conditions ----------------------------------------------------------------------------------------------------


def _disqualify_edge() -> Transition:
    return member_machine.machine().edges("disqualify", "consolidation")[0]


def _member_edge(state: str, rating: str | None) -> Transition | None:
    # The next step `explain` shows (states.status.member_view): a member rated unqualified is on its way to
    # `disqualified`, so what it waits for is that edge's conditions, not the pledge's.
    if state == "consolidation" and rating == "unqualified":
        return _disqualify_edge()
    return member_machine.advance_edge(state)


def member_results(
    session: Session, ctx: EvalContext, branch_ids: Sequence[str], as_of: AsOf | None = None
) -> dict[str, list[Result]]:
    """Every condition of each member's next step, for the members of `branch_ids`: one statement per phase
    (over the rows of a past T when `as_of` is given)."""
    found: dict[str, list[Result]] = {}
    for phase in PHASES:
        edge = member_machine.advance_edge(phase)
        assert edge is not None
        candidates = [edge] + ([_disqualify_edge()] if phase == "consolidation" else [])
        names = tuple(dict.fromkeys(name for e in candidates for name in e.guards))
        row = as_of.row(branch_ids) if as_of is not None else Row()
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


def branch_results(
    session: Session, ctx: EvalContext, branch_ids: Sequence[str], as_of: AsOf | None = None
) -> dict[str, list[Result]]:
    """Every condition of each branch's next step: one statement per phase (over the rows of T with `as_of`)."""
    found: dict[str, list[Result]] = {}
    for phase in PHASES:
        edge = branch_machine.advance_edge(phase)
        assert edge is not None
        row = as_of.row(branch_ids) if as_of is not None else Row()
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



# -- one run's facts -----------------------------------------------------------------------------------------------


_NO_APPRAISAL: dict[str, Any] = {
    "rating": None, "approved_at": None, "publicity_ends_at": None, "final_at": None, "excellent": False,
    "objection_pending": False, "withdrawal_confirmed_at": None,
}
"""What a report shows of an appraisal it cannot take back to T: nothing (and it says so)."""


@dataclass
class Chunk:
    """The facts of a chunk of branches: their members (with their appraisal), evaluations, meetings, counts, log."""

    ids: list[str]
    members: list[dict[str, Any]]
    """Each member with their appraisal; `appraisal_unknown` when it cannot be taken back to T."""
    member_results: dict[str, list[Result]]
    branch_results: dict[str, list[Result]]
    disposed: set[str]
    meetings: Sequence[tuple[str, str, dt.date, float | None]]
    ballots: Sequence[tuple[str, dt.date, int]]
    counts: Sequence[tuple[str, str, int]]
    log: list[TransitionLog]
    participants: dict[tuple[str, dt.date], int]


class Facts:
    """One report run's reading of the campaign at T: what is shared by every page, and a chunk of branches at a time."""

    def __init__(self, session: Session, key: str, at: dt.datetime) -> None:
        campaign = session.get(Campaign, key)
        if campaign is None:
            raise NotFound(zh=f"没有活动 {key!r}", en=f"unknown campaign {key!r}")
        self.session = session
        self.campaign = campaign
        self.key = key
        self.at = as_utc(at)
        self.tz = campaign.timezone
        self.ctx = context(session, key, self.at)
        self.windows = list(session.scalars(select(Phase).where(Phase.campaign_key == key).order_by(Phase.seq)))
        self.passed = set(passed_phases(session, key, self.at))
        self.deadlines = {p.name: as_utc(p.deadline_at) for p in self.windows}
        self.names: dict[str, str] = {}
        self.as_of = AsOf(session, key, self.at) if changed_after(session, key, self.at) else None
        """At a past T, the rows as they stood then; None when nothing has been decided since T."""
        self.appraisal: Any = self.as_of.appraisal if self.as_of else Appraisal

    # -- shared by every page --

    def fired(self) -> set[str]:
        return set(
            self.session.scalars(
                select(FiredDeadline.name).where(FiredDeadline.campaign_key == self.key, FiredDeadline.fired_at <= self.at)
            )
        )

    def stage(self) -> str:
        return phase_at(self.session, self.key, self.at)

    def summary(self) -> dict[str, Any]:
        """The figures of `status` (states.status.summary), counted over the rows of T."""
        if self.as_of is None:
            return summary(self.session, self.key, self.at)
        mp = self.as_of.members()
        members: dict[str, int] = {
            state: n for state, n in self.session.execute(select(mp.state, func.count()).group_by(mp.state))
        }
        branches: dict[str, int] = defaultdict(int)
        for branch in self.branches():
            branches[branch[3]] += 1
        return {
            "campaign": self.key,
            "phase": self.stage(),
            "members": {s: members[s] for s in member_machine.STATES if s in members},
            "branches": {s: branches[s] for s in branch_machine.STATES if s in branches},
            "stuck": {
                "members": sum(members.get(p, 0) for p in self.passed),
                "branches": sum(branches.get(p, 0) for p in self.passed),
            },
        }

    def stuck_since(self, state: str, since: dt.datetime | None) -> tuple[bool, dt.datetime | None]:
        """Stuck when in a phase whose deadline has passed; since the later of the deadline and entering it."""
        if state not in self.passed:
            return False, None
        deadline = self.deadlines[state]
        return True, max(as_utc(since), deadline) if since is not None else deadline

    def person_names(self, ids: Iterable[str]) -> dict[str, str]:
        missing = sorted({i for i in ids if i and i not in self.names})
        for part in chunks(missing, 500):
            rows = self.session.execute(select(Person.member_id, Person.name).where(Person.member_id.in_(part)))
            self.names.update({member_id: name for member_id, name in rows})
        return self.names

    def officers(self) -> tuple[dict[str, list[str]], list[tuple[str, str, str | None]]]:
        """Each branch's secretaries by name, and the committee secretaries (id, name, e-mail) to contact."""
        secretaries: dict[str, list[str]] = defaultdict(list)
        leaders: list[tuple[str, str, str | None]] = []
        for member_id, name, branch_id, role, email in self.session.execute(
            select(Person.member_id, Person.name, Person.branch_id, Person.role, Person.email)
            .where(Person.role.in_(("branch_secretary", "committee_secretary")))
            .order_by(Person.member_id)
        ):
            if role == "branch_secretary" and branch_id:
                secretaries[branch_id].append(name)
            elif role == "committee_secretary":
                leaders.append((member_id, name, email))
        return secretaries, leaders

    def transferred_after(self) -> int:
        """How many people moved to another branch after T (their pages list them under today's branch)."""
        earlier = aliased(BranchHistory)
        moved = select(func.count(func.distinct(BranchHistory.member_id))).where(
            BranchHistory.since > self.at,
            select(earlier.member_id)
            .where(earlier.member_id == BranchHistory.member_id, earlier.since < BranchHistory.since)
            .exists(),
        )
        return int(self.session.scalar(moved) or 0)

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

    # -- a chunk of branches --

    def branches(self) -> list[BranchRow]:
        """Every branch of the campaign with its state and since when (at T)."""
        rows: list[BranchRow] = [
            (branch_id, name, unit, state, since)
            for branch_id, name, unit, state, since in self.session.execute(
                select(Branch.branch_id, Branch.name, Branch.unit, BranchProgress.state, BranchProgress.state_since)
                .join(BranchProgress, BranchProgress.branch_id == Branch.branch_id)
                .where(BranchProgress.campaign_key == self.key)
                .order_by(Branch.branch_id)
            )
        ]
        if self.as_of is None:
            return rows
        then = self.as_of.branch_states
        return [(b, name, unit, then[b][0], then[b][1]) if b in then else (b, name, unit, state, since)
                for b, name, unit, state, since in rows]

    def chunk(self, branches: Sequence[BranchRow]) -> Chunk:
        ids = [b[0] for b in branches]
        s = self.session
        mp = self.as_of.members(ids) if self.as_of is not None else MemberProgress
        appraisal = self.appraisal
        rows = list(
            s.execute(
                select(
                    Person.member_id, Person.name, Person.role, Person.branch_id, mp.state, mp.state_since,
                    mp.prior_state, appraisal.rating, appraisal.approved_at, appraisal.publicity_ends_at,
                    # Final as of T (publicity over then), whether or not a sweep has noticed since.
                    case((rating_final(appraisal, self.at), appraisal.publicity_ends_at), else_=null()).label("final_at"),
                    appraisal.excellent, appraisal.objection_pending,
                    appraisal.withdrawal_confirmed_at,
                )
                .select_from(mp)
                .join(Person, Person.member_id == mp.member_id)
                .outerjoin(
                    appraisal,
                    (appraisal.campaign_key == mp.campaign_key) & (appraisal.member_id == mp.member_id),
                )
                .where(mp.campaign_key == self.key, Person.branch_id.in_(ids))
                .order_by(Person.branch_id, Person.member_id)
            ).mappings()
        )
        unknown = self.as_of.unknown if self.as_of is not None else set()
        members = [
            {**m, **_NO_APPRAISAL, "appraisal_unknown": True}
            if m["member_id"] in unknown
            else {**m, "appraisal_unknown": False}
            for m in rows
        ]
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
        return Chunk(
            ids=ids,
            members=members,
            member_results=member_results(s, self.ctx, ids, self.as_of),
            branch_results=branch_results(s, self.ctx, ids, self.as_of),
            disposed=disposed,
            meetings=meetings,
            ballots=ballots,
            counts=counts,
            log=log,
            participants=participants_on(s, self.tz, ids, days),
        )
