"""the secret ballot keeps each member's outcome only; an objection keeps when it was raised

ballot_tally loses qualified, basically_qualified and unqualified: nothing reads them, and in a branch of two or
three present they would tell how each voter voted (issue 14). The outcome that stands (or 'void') stays, with the
meeting's entitled and present. appraisal gains objected_at: a resolution cannot predate its objection.

Revision ID: 20261201_1830
Revises: 20261201_1800
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "20261201_1830"
down_revision = "20261201_1800"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("ballot_tally", schema=None) as batch_op:
        batch_op.drop_column("qualified")
        batch_op.drop_column("basically_qualified")
        batch_op.drop_column("unqualified")
    with op.batch_alter_table("appraisal", schema=None) as batch_op:
        batch_op.add_column(sa.Column("objected_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    # The counts are gone for good: a downgrade brings the columns back, zero, as the rules never read them.
    with op.batch_alter_table("appraisal", schema=None) as batch_op:
        batch_op.drop_column("objected_at")
    with op.batch_alter_table("ballot_tally", schema=None) as batch_op:
        batch_op.add_column(sa.Column("unqualified", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("basically_qualified", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("qualified", sa.Integer(), nullable=False, server_default="0"))
