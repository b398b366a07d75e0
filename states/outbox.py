"""Queuing notices: one row per recipient and cause, keyed so that a cause queues one notice however often."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Select, literal
from sqlalchemy.orm import Session

from states.clock import as_utc
from states.db import changed, insert_ignoring_duplicates
from states.errors import CampaignError
from states.models import Notice

EVENTS: dict[str, tuple[str, ...]] = {
    # event: the context fields it must carry — what dispatch cannot derive at delivery. It adds the campaign (the
    # notice's own column), names, a member notice's member (the recipient, unless the context names another) and
    # branch (the member's), and whether it goes to the member's secretary (the recipient is not the member).
    "phase_started": ("phase", "deadline"),
    "deadline_reminder": ("phase", "deadline", "days_before", "figures"),
    "member_stuck": ("member_id", "phase", "deadline", "figures"),
    "branch_escalation": ("branch_id", "phase", "deadline", "level", "figures"),
    "branch_reminder": ("branch_id", "phase", "deadline", "days_before", "members_short", "figures"),
    "approval_requested": ("branch_id", "ballot_date"),
    "publicity_started": ("branch_id", "publicity_ends"),
    "admonishment_due": ("member_id",),
    "rating_final": ("rating",),
    "withdrawal_pending": ("member_id", "phase", "deadline"),
    "oath_ceremony": ("deadline",),
    "daily_digest": ("day",),
    "action_code": ("purpose", "subject", "day", "request"),
}


class InvalidNotice(CampaignError):
    """Raised when a notice is queued with an unknown event or without a field its template needs."""


def notice_key(recipient_id: str, event: str, campaign: str, subject: str, occasion: str) -> str:
    """The notice's cause: recipient, event, subject and occasion."""
    return ":".join((recipient_id, event, campaign, subject, occasion))


def validate(event: str, context: dict[str, Any]) -> None:
    if event not in EVENTS:
        raise InvalidNotice(zh=f"没有通知事件 {event!r}", en=f"unknown notice event {event!r}")
    missing = [f for f in EVENTS[event] if f not in context]
    if missing:
        raise InvalidNotice(zh=f"通知 {event} 缺少 {'、'.join(missing)}", en=f"notice {event} lacks {', '.join(missing)}")


def queue(
    session: Session,
    *,
    event: str,
    campaign: str,
    recipient_id: str,
    subject: str,
    occasion: str,
    context: dict[str, Any],
    at: dt.datetime,
) -> None:
    """Queue one notice in the caller's transaction (a second queuing of the same cause does nothing)."""
    validate(event, context)
    statement = insert_ignoring_duplicates(session, Notice).values(
        key=notice_key(recipient_id, event, campaign, subject, occasion),
        event=event,
        campaign_key=campaign,
        recipient_id=recipient_id,
        context=context,
        queued_at=as_utc(at),
        status="pending",
        attempts=0,
    )
    session.execute(statement)


def queue_from(session: Session, event: str, source: Select[Any], at: dt.datetime) -> int:
    """Queue the notices a SELECT yields, set-based: columns (key, campaign_key, recipient_id, context)."""
    statement = insert_ignoring_duplicates(session, Notice).from_select(
        ["key", "campaign_key", "recipient_id", "context", "event", "queued_at", "status", "attempts"],
        source.add_columns(
            literal(event).label("event"),
            literal(as_utc(at)).label("queued_at"),
            literal("pending").label("status"),
            literal(0).label("attempts"),
        ),
    )
    return changed(session.execute(statement))
