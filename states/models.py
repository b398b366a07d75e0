"""The schema: typed SQLAlchemy 2 models for people, plans, progress, evidence, the appraisal, the log and the outbox.

Current state lives on the progress rows (`state`, `state_since`, `version`); its history is the append-only
transition log beside them. Instants are stored in UTC; dates are calendar dates in the plan's timezone.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

Id = String(64)
StateName = String(32)


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Instants go in as UTC whatever their offset, and come out aware in UTC (SQLite keeps no offset)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: instants must carry an offset")
        return value.astimezone(dt.UTC)

    def process_result_value(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {dt.datetime: UTCDateTime(), dict[str, Any]: JSON, list[Any]: JSON}


class Unit(Base):
    __tablename__ = "unit"
    name: Mapped[str] = mapped_column(String(200), primary_key=True)


class Branch(Base):
    __tablename__ = "branch"
    branch_id: Mapped[str] = mapped_column(Id, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    unit: Mapped[str] = mapped_column(ForeignKey("unit.name"))


class Person(Base):
    """Everyone on the roster: members of branches, the responsibility chain, the office director, inspectors."""

    __tablename__ = "person"
    member_id: Mapped[str] = mapped_column(Id, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    branch_id: Mapped[str | None] = mapped_column(ForeignKey("branch.branch_id"))
    unit: Mapped[str] = mapped_column(ForeignKey("unit.name"))
    role: Mapped[str] = mapped_column(String(32), index=True)
    email: Mapped[str | None] = mapped_column(String(320))
    locale: Mapped[str] = mapped_column(String(8), default="zh-CN")

    # A branch's people, and its secretary found from the index alone: the notices to members and their branch
    # secretary join every selected member to the secretary of their branch.
    __table_args__ = (Index("ix_person_branch_role", "branch_id", "role", "member_id"),)


class BranchHistory(Base):
    """Every branch a person has belonged to: a member's record must name one of them."""

    __tablename__ = "branch_history"
    member_id: Mapped[str] = mapped_column(ForeignKey("person.member_id"), primary_key=True)
    branch_id: Mapped[str] = mapped_column(ForeignKey("branch.branch_id"), primary_key=True)
    since: Mapped[dt.datetime]


class Campaign(Base):
    __tablename__ = "campaign"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    title: Mapped[str] = mapped_column(String(400))
    timezone: Mapped[str] = mapped_column(String(64))
    study_hours: Mapped[float] = mapped_column(Float)
    concentrated_days: Mapped[int]
    publicity_days: Mapped[int]
    excellent_num: Mapped[int]
    excellent_den: Mapped[int]
    reminders_days_before: Mapped[list[Any]]
    escalation_days: Mapped[dict[str, Any]]
    plan: Mapped[dict[str, Any]]
    loaded_at: Mapped[dt.datetime]


class Phase(Base):
    __tablename__ = "phase"
    campaign_key: Mapped[str] = mapped_column(ForeignKey("campaign.key"), primary_key=True)
    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    seq: Mapped[int]
    start: Mapped[dt.date] = mapped_column(Date)
    end: Mapped[dt.date] = mapped_column(Date)
    starts_at: Mapped[dt.datetime]
    deadline_at: Mapped[dt.datetime]


class MemberProgress(Base):
    """A member's place in one campaign; every update is a compare-and-set on `state` (and bumps `version`)."""

    __tablename__ = "member_progress"
    campaign_key: Mapped[str] = mapped_column(ForeignKey("campaign.key"), primary_key=True)
    member_id: Mapped[str] = mapped_column(ForeignKey("person.member_id"), primary_key=True)
    state: Mapped[str] = mapped_column(StateName)
    state_since: Mapped[dt.datetime]
    version: Mapped[int] = mapped_column(Integer, default=1)
    prior_state: Mapped[str | None] = mapped_column(StateName)
    step: Mapped[str | None] = mapped_column(String(40))
    """The id of the bulk statement that last changed the row: the log is written from exactly those rows, found
    within the statement's scope (no index: every moved row would write one)."""

    __table_args__ = (Index("ix_member_progress_state", "campaign_key", "state"),)


class BranchProgress(Base):
    __tablename__ = "branch_progress"
    campaign_key: Mapped[str] = mapped_column(ForeignKey("campaign.key"), primary_key=True)
    branch_id: Mapped[str] = mapped_column(ForeignKey("branch.branch_id"), primary_key=True)
    state: Mapped[str] = mapped_column(StateName)
    state_since: Mapped[dt.datetime]
    version: Mapped[int] = mapped_column(Integer, default=1)
    step: Mapped[str | None] = mapped_column(String(40), index=True)


class ImportRecord(Base):
    """One imported file (or loaded plan): its content hash makes a second import of the same file a no-op."""

    __tablename__ = "import_record"
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(16))
    scope: Mapped[str] = mapped_column(String(64), default="")
    sha256: Mapped[str] = mapped_column(String(64))
    filename: Mapped[str] = mapped_column(Text)
    rows: Mapped[int]
    at: Mapped[dt.datetime]
    actor: Mapped[str] = mapped_column(String(64))
    __table_args__ = (UniqueConstraint("kind", "scope", "sha256", name="uq_import_record_content"),)


class Evidence(Base):
    """One fact: a sitting of study, a submission, a meeting with its sign-ins …; `id` keeps import order."""

    __tablename__ = "evidence"
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    member_id: Mapped[str | None] = mapped_column(Id)
    branch_id: Mapped[str] = mapped_column(Id)
    kind: Mapped[str] = mapped_column(String(32))
    date: Mapped[dt.date] = mapped_column(Date)
    value: Mapped[str] = mapped_column(Text, default="")
    num: Mapped[float | None] = mapped_column(Float)
    ref: Mapped[str | None] = mapped_column(String(200), unique=True)
    import_id: Mapped[int | None] = mapped_column(Integer)
    __table_args__ = (
        Index("ix_evidence_member", "member_id", "kind", "date"),
        # member_id in the branch index: a branch's own evidence (member_id NULL) is found by it, not by a scan of
        # every NULL in ix_evidence_member (seen: 8 ms per branch, 17 s of a 100k sweep).
        Index("ix_evidence_branch", "branch_id", "kind", "member_id", "date"),
    )


class BallotMeeting(Base):
    """A branch member meeting's secret ballot: who was entitled and present — never who voted how."""

    __tablename__ = "ballot_meeting"
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    campaign_key: Mapped[str] = mapped_column(ForeignKey("campaign.key"), index=True)
    branch_id: Mapped[str] = mapped_column(ForeignKey("branch.branch_id"))
    date: Mapped[dt.date] = mapped_column(Date)
    entitled: Mapped[int]
    present: Mapped[int]
    recorded_at: Mapped[dt.datetime]


class BallotTally(Base):
    """One member's outcome at one meeting: the rating that stands, or 'void'. The counts behind it are read, checked
    and dropped: in a branch of two or three present they would tell how each voter voted, and no rule needs them."""

    __tablename__ = "ballot_tally"
    meeting_id: Mapped[int] = mapped_column(ForeignKey("ballot_meeting.id"), primary_key=True)
    member_id: Mapped[str] = mapped_column(ForeignKey("person.member_id"), primary_key=True)
    outcome: Mapped[str] = mapped_column(String(32))


class Appraisal(Base):
    """A member's appraisal as it stands: the current rating, its approval, publicity, objection, selection."""

    __tablename__ = "appraisal"
    campaign_key: Mapped[str] = mapped_column(ForeignKey("campaign.key"), primary_key=True)
    member_id: Mapped[str] = mapped_column(ForeignKey("person.member_id"), primary_key=True)
    rating: Mapped[str | None] = mapped_column(String(32))
    meeting_id: Mapped[int | None] = mapped_column(Integer)
    rated_at: Mapped[dt.datetime | None]
    approved_at: Mapped[dt.datetime | None]
    approved_by: Mapped[str | None] = mapped_column(Id)
    publicity_ends_at: Mapped[dt.datetime | None]
    objection_pending: Mapped[bool] = mapped_column(Boolean, default=False)
    objected_at: Mapped[dt.datetime | None]
    """When the pending objection was raised: its resolution cannot predate it."""
    final_at: Mapped[dt.datetime | None]
    excellent: Mapped[bool] = mapped_column(Boolean, default=False)
    withdrawal_confirmed_at: Mapped[dt.datetime | None]
    withdrawal_confirmed_by: Mapped[str | None] = mapped_column(Id)
    step: Mapped[str | None] = mapped_column(String(40), index=True)


class FiredDeadline(Base):
    """A deadline (or the campaign's start) that has fired: the database's guarantee of once-only."""

    __tablename__ = "fired_deadline"
    campaign_key: Mapped[str] = mapped_column(ForeignKey("campaign.key"), primary_key=True)
    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    due_at: Mapped[dt.datetime]
    fired_at: Mapped[dt.datetime]
    flow_run_id: Mapped[str | None] = mapped_column(String(64))


class DoneChunk(Base):
    """A chunk of branches (lo..hi) that a firing has finished: a crashed firing resumes after it."""

    __tablename__ = "done_chunk"
    campaign_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    deadline: Mapped[str] = mapped_column(String(32), primary_key=True)
    lo: Mapped[str] = mapped_column(Id, primary_key=True)
    hi: Mapped[str] = mapped_column(Id)
    done_at: Mapped[dt.datetime]
    advanced: Mapped[int] = mapped_column(Integer, default=0)


class PlannedChunk(Base):
    """A chunk of a deadline's firing that a sweep handed to a work pool, in a numbered group (one flow run each).

    Written by the planning sweep before it starts the groups: a chunk flow on another host takes its chunks and
    the sweep's time from here, never from its parameters, and refuses a group no sweep planned."""

    __tablename__ = "planned_chunk"
    sweep_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    deadline: Mapped[str] = mapped_column(String(32), primary_key=True)
    lo: Mapped[str] = mapped_column(Id, primary_key=True)
    hi: Mapped[str] = mapped_column(Id)
    campaign_key: Mapped[str] = mapped_column(ForeignKey("campaign.key"))
    grp: Mapped[int] = mapped_column(Integer)
    at: Mapped[dt.datetime]  # the sweep's time T
    flow_run_id: Mapped[str | None] = mapped_column(String(64))  # the planning sweep's run


class TransitionLog(Base):
    """Append-only: every change and every operator action. No code path updates or deletes a row."""

    __tablename__ = "transition_log"
    # (campaign_key, at), not campaign_key alone: the same one index for the sweep's INSERTs to keep, and whether
    # anything was decided after T (`stuck --at`, `report --at`) is a seek, not a read of the campaign's whole log.
    __table_args__ = (Index("ix_transition_log_campaign_at", "campaign_key", "at"),)
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    campaign_key: Mapped[str] = mapped_column(String(64))
    member_id: Mapped[str | None] = mapped_column(Id, index=True)
    branch_id: Mapped[str | None] = mapped_column(Id)
    from_state: Mapped[str | None] = mapped_column(StateName)
    to_state: Mapped[str | None] = mapped_column(StateName)
    cause: Mapped[str] = mapped_column(String(64))
    trigger: Mapped[str | None] = mapped_column(String(32))
    sweep_id: Mapped[str | None] = mapped_column(String(40), index=True)
    actor: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(Text, default="")
    flow_run_id: Mapped[str | None] = mapped_column(String(64))
    at: Mapped[dt.datetime]
    """The decision's time T, as its caller stated it."""
    block: Mapped[str] = mapped_column(String(40), index=True)
    recorded_at: Mapped[dt.datetime | None]
    """The real time the entry was written, by the database server's clock in the INSERT (NULL only for entries
    written before this column existed)."""


class AuditSeal(Base):
    """Seals one block of log entries (one transaction) with an HMAC under a key outside the database, over them and
    the previous seal of its chain: the main chain (`lane` NULL) or a sweep chunk's lane, which a merge seal on the
    main chain takes in at the sweep's end (`states.audit`)."""

    __tablename__ = "audit_seal"
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    block: Mapped[str] = mapped_column(String(40), unique=True)
    entries: Mapped[int]
    digest: Mapped[str] = mapped_column(String(64))
    prev_digest: Mapped[str] = mapped_column(String(64))
    at: Mapped[dt.datetime]
    scheme: Mapped[str | None] = mapped_column(String(16))
    """'hmac-sha256'; 'hmac-merge' for a merge seal (no entries of its own: `entries` counts the lanes it merges);
    NULL for a seal written before seals were keyed (plain SHA-256, checked only as the chain's beginning when a keyed
    seal follows)."""
    lane: Mapped[str | None] = mapped_column(String(400), index=True)
    """The lane the seal chains in (`states.audit.lane_id`); NULL on the main chain."""


class AuditLaneMerge(Base):
    """A lane taken into the main chain: its head, seals and entries as the merge seal (`merge_block`) covers them.
    Keyed by the lane: a lane is merged once, and a seal into a merged lane is refused."""

    __tablename__ = "audit_lane_merge"
    lane: Mapped[str] = mapped_column(String(400), primary_key=True)
    merge_block: Mapped[str] = mapped_column(String(40), index=True)
    head: Mapped[str] = mapped_column(String(64))
    seals: Mapped[int]
    entries: Mapped[int]


class Notice(Base):
    """The outbox: one notice to one recipient, keyed by its cause; rendered only at delivery."""

    __tablename__ = "notice"
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(400), unique=True)
    event: Mapped[str] = mapped_column(String(32), index=True)
    campaign_key: Mapped[str] = mapped_column(String(64))
    recipient_id: Mapped[str] = mapped_column(Id)
    context: Mapped[dict[str, Any]]
    queued_at: Mapped[dt.datetime]
    status: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    delivered_at: Mapped[dt.datetime | None]



class CodeUse(Base):
    """A submitted one-time code (`states/codes.py`): the row with attempt '' spends the person's code for this
    decision (its primary key makes that happen once); each other row is one wrong try, keyed by the attempt (a flow
    run and answer) so a replayed flow counts it once. The code itself is never stored: it is an HMAC under a key
    kept outside the database."""

    __tablename__ = "code_use"
    purpose: Mapped[str] = mapped_column(String(16), primary_key=True)
    campaign_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    subject: Mapped[str] = mapped_column(String(200), primary_key=True)
    person_id: Mapped[str] = mapped_column(Id, primary_key=True)
    attempt: Mapped[str] = mapped_column(String(100), primary_key=True)
    outcome: Mapped[str] = mapped_column(String(16))
    at: Mapped[dt.datetime]


class MemberFact(Base):
    """Derived from the evidence: a member's tallies in one window of a campaign (`states.facts` keeps them as
    evidence arrives; a column per tally the conditions read, `<tally>_mask` the window's distinct days)."""

    __tablename__ = "member_fact"
    campaign_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    member_id: Mapped[str] = mapped_column(Id, primary_key=True)
    window_seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    last_date: Mapped[dt.date] = mapped_column(Date)
    """The latest evidence date in the window: a cut-off before it reads the window's rows instead."""
    study_hours: Mapped[float] = mapped_column(Float, default=0.0)
    concentrated_days: Mapped[int] = mapped_column(Integer, default=0)
    concentrated_days_mask: Mapped[int] = mapped_column(BigInteger, default=0)
    study_check: Mapped[str | None] = mapped_column(Text)
    analysis_report: Mapped[int] = mapped_column(Integer, default=0)
    satisfaction_evaluation: Mapped[int] = mapped_column(Integer, default=0)
    heart_talk: Mapped[int] = mapped_column(Integer, default=0)
    rectification_plan: Mapped[int] = mapped_column(Integer, default=0)
    good_deed: Mapped[int] = mapped_column(Integer, default=0)
    pledge_application: Mapped[int] = mapped_column(Integer, default=0)
    followup: Mapped[int] = mapped_column(Integer, default=0)
    oath: Mapped[int] = mapped_column(Integer, default=0)
    public_commitment: Mapped[int] = mapped_column(Integer, default=0)


class BranchFact(Base):
    """Derived from the evidence: a branch's own tallies (its meetings …) in one window of a campaign."""

    __tablename__ = "branch_fact"
    campaign_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    branch_id: Mapped[str] = mapped_column(Id, primary_key=True)
    window_seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    last_date: Mapped[dt.date] = mapped_column(Date)
    mobilization_meeting: Mapped[int] = mapped_column(Integer, default=0)
    concentrated_training: Mapped[int] = mapped_column(Integer, default=0)
    concentrated_training_mask: Mapped[int] = mapped_column(BigInteger, default=0)
    discussion_meeting: Mapped[int] = mapped_column(Integer, default=0)
    opinions_solicited: Mapped[float] = mapped_column(Float, default=0.0)
    analysis_meeting: Mapped[int] = mapped_column(Integer, default=0)
    branch_rectification_plan: Mapped[int] = mapped_column(Integer, default=0)
    theme_activity: Mapped[int] = mapped_column(Integer, default=0)
    oath_ceremony: Mapped[int] = mapped_column(Integer, default=0)


class ProgressCount(Base):
    """How many members (or branches) of a campaign are in each state, kept as deltas by every statement that moves
    or enrols them (`states.counts`), so `status` reads a few rows at any size instead of counting every member.
    Rows are only ever added by movers (parallel chunks never wait on each other for a counter) and folded into one
    per state at a sweep's end."""

    __tablename__ = "progress_count"
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    campaign_key: Mapped[str] = mapped_column(String(64), index=True)
    subject: Mapped[str] = mapped_column(String(8))
    """'member' or 'branch'."""
    state: Mapped[str] = mapped_column(StateName)
    delta: Mapped[int] = mapped_column(Integer)
