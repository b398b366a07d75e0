"""facts kept as evidence arrives: member_fact and branch_fact, backfilled from the evidence

Revision ID: 20261201_1900
Revises: 20261201_1840
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.orm import Session

revision = "20261201_1900"
down_revision = "20261201_1840"
branch_labels = None
depends_on = None

MEMBER_COUNTS = (
    "analysis_report", "satisfaction_evaluation", "heart_talk", "rectification_plan", "good_deed",
    "pledge_application", "followup", "oath", "public_commitment",
)
BRANCH_COUNTS = (
    "mobilization_meeting", "concentrated_training", "discussion_meeting", "analysis_meeting",
    "branch_rectification_plan", "theme_activity", "oath_ceremony",
)


def _key(table: str, subject: str) -> list[sa.Column]:
    return [
        sa.Column("campaign_key", sa.String(length=64), nullable=False),
        sa.Column(subject, sa.String(length=64), nullable=False),
        sa.Column("window_seq", sa.Integer(), nullable=False),
        sa.Column("last_date", sa.Date(), nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "member_fact",
        *_key("member_fact", "member_id"),
        sa.Column("study_hours", sa.Float(), nullable=False),
        sa.Column("concentrated_days", sa.Integer(), nullable=False),
        sa.Column("concentrated_days_mask", sa.BigInteger(), nullable=False),
        sa.Column("study_check", sa.Text(), nullable=True),
        *[sa.Column(name, sa.Integer(), nullable=False) for name in MEMBER_COUNTS],
        sa.PrimaryKeyConstraint("campaign_key", "member_id", "window_seq", name=op.f("pk_member_fact")),
    )
    op.create_table(
        "branch_fact",
        *_key("branch_fact", "branch_id"),
        *[sa.Column(name, sa.Integer(), nullable=False) for name in BRANCH_COUNTS],
        sa.Column("concentrated_training_mask", sa.BigInteger(), nullable=False),
        sa.Column("opinions_solicited", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("campaign_key", "branch_id", "window_seq", name=op.f("pk_branch_fact")),
    )
    # The backfill: the facts of every campaign from the evidence already imported (the code that keeps them, so
    # they are computed one way; a later migration that changes the facts' columns rebuilds them again).
    from states import facts

    session = Session(bind=op.get_bind())
    facts.repair(session)
    session.flush()


def downgrade() -> None:
    op.drop_table("branch_fact")
    op.drop_table("member_fact")
