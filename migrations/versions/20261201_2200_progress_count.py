"""progress_count: members and branches per state kept as they move, backfilled from the progress rows

Revision ID: 20261201_2200
Revises: 20261201_2110
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "20261201_2200"
down_revision = "20261201_2110"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "progress_count",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("campaign_key", sa.String(length=64), nullable=False),
        sa.Column("subject", sa.String(length=8), nullable=False),
        sa.Column("state", sa.String(length=32), nullable=False),
        sa.Column("delta", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_progress_count")),
    )
    op.create_index(op.f("ix_progress_count_campaign_key"), "progress_count", ["campaign_key"], unique=False)
    for subject, table in (("member", "member_progress"), ("branch", "branch_progress")):
        op.execute(
            f"INSERT INTO progress_count (campaign_key, subject, state, delta) "
            f"SELECT campaign_key, '{subject}', state, count(*) FROM {table} GROUP BY campaign_key, state"
        )


def downgrade() -> None:
    op.drop_index(op.f("ix_progress_count_campaign_key"), table_name="progress_count")
    op.drop_table("progress_count")
