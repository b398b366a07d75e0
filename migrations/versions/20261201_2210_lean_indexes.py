"""lean indexes: member_progress.step loses its index (moved rows are found within their chunk); person's branch
index becomes (branch_id, role, member_id), which finds a branch's secretary from the index alone

Revision ID: 20261201_2210
Revises: 20261201_2200
"""
from __future__ import annotations

from alembic import op

revision = "20261201_2210"
down_revision = "20261201_2200"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_member_progress_step", table_name="member_progress")
    op.create_index("ix_person_branch_role", "person", ["branch_id", "role", "member_id"], unique=False)
    op.drop_index("ix_person_branch_id", table_name="person")


def downgrade() -> None:
    op.create_index("ix_person_branch_id", "person", ["branch_id"], unique=False)
    op.drop_index("ix_person_branch_role", table_name="person")
    op.create_index("ix_member_progress_step", "member_progress", ["step"], unique=False)
