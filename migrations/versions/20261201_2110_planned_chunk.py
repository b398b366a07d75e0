"""planned_chunk: the chunks a sweep hands to a work pool, by group, so a chunk flow takes its work from here

Revision ID: 20261201_2110
Revises: 20261201_2100
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "20261201_2110"
down_revision = "20261201_2100"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "planned_chunk",
        sa.Column("sweep_id", sa.String(length=32), nullable=False),
        sa.Column("deadline", sa.String(length=32), nullable=False),
        sa.Column("lo", sa.String(length=64), nullable=False),
        sa.Column("hi", sa.String(length=64), nullable=False),
        sa.Column("campaign_key", sa.String(length=64), nullable=False),
        sa.Column("grp", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("flow_run_id", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(
            ["campaign_key"], ["campaign.key"], name=op.f("fk_planned_chunk_campaign_key_campaign")
        ),
        sa.PrimaryKeyConstraint("sweep_id", "deadline", "lo", name=op.f("pk_planned_chunk")),
    )


def downgrade() -> None:
    op.drop_table("planned_chunk")
