"""code_use: submitted one-time codes — the one spending each person's code per decision, and the wrong tries

Revision ID: 20261201_1840
Revises: 20261201_1830
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "20261201_1840"
down_revision = "20261201_1830"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "code_use",
        sa.Column("purpose", sa.String(length=16), nullable=False),
        sa.Column("campaign_key", sa.String(length=64), nullable=False),
        sa.Column("subject", sa.String(length=200), nullable=False),
        sa.Column("person_id", sa.String(length=64), nullable=False),
        sa.Column("attempt", sa.String(length=100), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("purpose", "campaign_key", "subject", "person_id", "attempt", name=op.f("pk_code_use")),
    )


def downgrade() -> None:
    op.drop_table("code_use")
