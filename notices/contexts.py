"""The typed context of every notice event: what the queue validates and the templates may read."""


from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Annotated, Any, Literal, TypeAlias
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from states import labels
from states.labels import Figure, Locale

PhaseName: TypeAlias = Literal["study", "analysis", "rectification", "consolidation", "pledge"]
StageName: TypeAlias = Literal[
    "not_started", "study", "analysis", "rectification", "consolidation", "pledge", "ended"
]
StateName: TypeAlias = Literal[
    "enrolled",
    "study",
    "analysis",
    "rectification",
    "consolidation",
    "pledge",
    "completed",
    "exempt",
    "referred",
    "withdrawal_pending",
    "withdrawn",
    "disqualified",
]
RatingName: TypeAlias = Literal["qualified", "basically_qualified", "unqualified"]
LevelName: TypeAlias = Literal["specific", "direct", "second", "first"]
NonNegative: TypeAlias = Annotated[int, Field(ge=0)]


# -- typed contexts -------------------------------------------------------------------------------------------


class _Context(BaseModel):
    # Forbidding extras makes a drift between the queue and the templates fail at queuing, not in a mailbox;
    # and it keeps vote counts out of any notice by construction.
    model_config = ConfigDict(extra="forbid", frozen=True)


def _known_condition(name: str) -> str:
    if name not in labels.CONDITIONS:
        raise ValueError(f"unknown condition {name!r}")
    return name


class Recipient(_Context):
    member_id: str
    name: str
    email: str | None
    locale: Locale


class CampaignRef(_Context):
    key: str
    title: str
    timezone: str

    @field_validator("timezone")
    @classmethod
    def _zone_exists(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown timezone {value!r}") from None
        return value


class MemberRef(_Context):
    member_id: str
    name: str


class BranchRef(_Context):
    branch_id: str
    name: str


class Unmet(_Context):
    """One unmet condition with its figures, as `explain` reports it."""

    condition: str
    have: Figure
    need: Figure

    check_condition = field_validator("condition")(_known_condition)


class NoticeContext(_Context):
    """What every notice knows: who receives it and which campaign it belongs to."""

    recipient: Recipient
    campaign: CampaignRef


class PhaseStarted(NoticeContext):
    member: MemberRef
    branch: BranchRef
    phase: PhaseName
    deadline: dt.date
    asks: list[str]
    needs: dict[str, Figure]

    @field_validator("asks")
    @classmethod
    def _known_asks(cls, value: list[str]) -> list[str]:
        return [_known_condition(name) for name in value]

    @field_validator("needs")
    @classmethod
    def _known_needs(cls, value: dict[str, Figure]) -> dict[str, Figure]:
        for name in value:
            _known_condition(name)
        return value


class DeadlineReminder(NoticeContext):
    member: MemberRef
    branch: BranchRef
    phase: PhaseName
    deadline: dt.date
    days_before: NonNegative
    unmet: list[Unmet]


class MemberStuck(NoticeContext):
    member: MemberRef
    branch: BranchRef
    phase: PhaseName
    deadline: dt.date
    unmet: list[Unmet]
    to_secretary: bool


class BranchEscalation(NoticeContext):
    branch: BranchRef
    phase: PhaseName
    deadline: dt.date
    level: LevelName
    days_stuck: NonNegative
    unmet: list[Unmet]
    stuck_members: NonNegative


class BranchReminder(NoticeContext):
    """To a branch secretary before a deadline: the branch's own unmet conditions and its members still short."""

    branch: BranchRef
    phase: PhaseName
    deadline: dt.date
    days_before: NonNegative
    unmet: list[Unmet]
    members_short: NonNegative


class RatingCounts(_Context):
    qualified: NonNegative
    basically_qualified: NonNegative
    unqualified: NonNegative


OneTimeCode: TypeAlias = Annotated[str, Field(pattern=r"^[0-9]{8}$")]


class ApprovalCodes(_Context):
    """The recipient's own codes for this ballot, one per decision (computed at delivery, never stored)."""

    approve: OneTimeCode
    reject: OneTimeCode


class ApprovalRequested(NoticeContext):
    branch: BranchRef
    ballot_date: dt.date
    rated_members: NonNegative
    counts: RatingCounts
    codes: ApprovalCodes | None = None  # None only for a notice queued before codes existed


class RetryRequest(_Context):
    members: list[str]
    branches: list[str]
    all_stuck: bool
    reason: str


class ActionCode(NoticeContext):
    """Someone asked, in the recipient's name, for an operator action in the UI: the code that confirms it."""

    purpose: Literal["retry"]
    day: dt.date
    request: RetryRequest
    code: OneTimeCode


class RatingEntry(_Context):
    member_id: str
    name: str
    rating: RatingName


class PublicityStarted(NoticeContext):
    branch: BranchRef
    publicity_ends: dt.datetime
    ratings: list[RatingEntry]


class AdmonishmentDue(NoticeContext):
    member: MemberRef
    branch: BranchRef
    to_secretary: bool


class RatingFinal(NoticeContext):
    member: MemberRef
    branch: BranchRef
    rating: RatingName
    excellent: bool

    @model_validator(mode="after")
    def _excellent_only_if_qualified(self) -> RatingFinal:
        if self.excellent and self.rating != "qualified":
            raise ValueError("only a qualified member can be excellent")
        return self


class WithdrawalPending(NoticeContext):
    member: MemberRef
    branch: BranchRef
    deadline: dt.date
    to_secretary: bool


class OathCeremony(NoticeContext):
    branch: BranchRef
    member: MemberRef
    phase: Literal["pledge"]
    deadline: dt.date


class StuckCounts(_Context):
    members: NonNegative
    branches: NonNegative


class LaggingBranch(_Context):
    branch_id: str
    name: str
    state: StateName
    stuck_members: NonNegative


def _in_state_order(counts: dict[StateName, NonNegative]) -> dict[StateName, NonNegative]:
    # The producer's dict order is whatever its query returned; people read states along the path.
    return {state: counts[state] for state in labels.STATES if state in counts}


class DailyDigest(NoticeContext):
    day: dt.date
    phase: StageName
    members: dict[StateName, NonNegative]
    branches: dict[StateName, NonNegative]
    stuck: StuckCounts
    lagging: list[LaggingBranch]

    ordered = field_validator("members", "branches")(_in_state_order)


CONTEXT_MODELS: dict[str, type[NoticeContext]] = {
    "phase_started": PhaseStarted,
    "deadline_reminder": DeadlineReminder,
    "member_stuck": MemberStuck,
    "branch_escalation": BranchEscalation,
    "branch_reminder": BranchReminder,
    "approval_requested": ApprovalRequested,
    "publicity_started": PublicityStarted,
    "admonishment_due": AdmonishmentDue,
    "rating_final": RatingFinal,
    "withdrawal_pending": WithdrawalPending,
    "oath_ceremony": OathCeremony,
    "daily_digest": DailyDigest,
    "action_code": ActionCode,
}
EVENTS: tuple[str, ...] = tuple(CONTEXT_MODELS)


def validate_context(event: str, context: Mapping[str, Any]) -> NoticeContext:
    """Check a context against its event's model; the queue calls this too, so bad data never waits in it."""
    try:
        model = CONTEXT_MODELS[event]
    except KeyError:
        raise ValueError(f"unknown notice event {event!r}") from None
    return model.model_validate(context)
