"""reminder keys name the deadline's date: `phase:k` becomes `phase:<deadline date>:k`

A reminder's occasion was `phase:k`, so a deadline moved by a plan reload (allowed while it has not fired) never got
the reminders already sent for its old date. The sweep now keys `phase:<date>:k`; the reminders queued before this
revision are rekeyed from the date they named (their context's `deadline`), so an unmoved deadline is not reminded
twice after the upgrade and a deadline moved since then is reminded again for its new date. Set-based: one UPDATE.

Revision ID: 20261201_2030
Revises: 20261201_1900
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "20261201_2030"
down_revision = "20261201_1900"
branch_labels = None
depends_on = None

REMINDERS = ("deadline_reminder", "branch_reminder")
notice = sa.table(
    "notice", sa.column("key", sa.String), sa.column("event", sa.String), sa.column("campaign_key", sa.String),
    sa.column("context", sa.JSON),
)
phase = sa.table("phase", sa.column("campaign_key", sa.String), sa.column("name", sa.String), sa.column("end", sa.Date))


def _field(name: str) -> sa.ColumnElement[str]:
    return sa.cast(notice.c.context[name].as_string(), sa.String)


def _ends_with(suffix: sa.ColumnElement[str]) -> sa.ColumnElement[bool]:
    return sa.func.substr(notice.c.key, sa.func.length(notice.c.key) - sa.func.length(suffix) + 1) == suffix


def upgrade() -> None:
    k, deadline = _field("days_before"), _field("deadline")
    old_occasion = sa.literal(":") + _field("phase") + sa.literal(":") + k
    op.execute(
        notice.update()
        .where(notice.c.event.in_(REMINDERS), _ends_with(old_occasion))
        .values(key=sa.func.substr(notice.c.key, 1, sa.func.length(notice.c.key) - sa.func.length(k)) + deadline + sa.literal(":") + k)
    )


def downgrade() -> None:
    # Back to `phase:k` for the reminders of each phase's current deadline (those the older code would queue again);
    # a reminder for a date since moved keeps its dated key, which the older code never makes, so keys stay unique.
    k, deadline = _field("days_before"), _field("deadline")
    dated = sa.literal(":") + deadline + sa.literal(":") + k
    current = (
        sa.select(phase.c.end)
        .where(phase.c.campaign_key == notice.c.campaign_key, phase.c.name == _field("phase"))
        .scalar_subquery()
    )
    op.execute(
        notice.update()
        .where(notice.c.event.in_(REMINDERS), _ends_with(dated), sa.cast(current, sa.String) == deadline)
        .values(key=sa.func.substr(notice.c.key, 1, sa.func.length(notice.c.key) - sa.func.length(dated)) + sa.literal(":") + k)
    )
