"""a branch's own evidence is found through its index: member_id joins ix_evidence_branch

Without it SQLite (no statistics) answers `branch_id = ? AND member_id IS NULL AND kind = ?` through
ix_evidence_member, scanning every branch-level row once per branch.

Revision ID: 20261128_0002
Revises: 20261127_0001
"""
from __future__ import annotations

from alembic import op

revision = "20261128_0002"
down_revision = "20261127_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("evidence", schema=None) as batch_op:
        batch_op.drop_index("ix_evidence_branch")
        batch_op.create_index("ix_evidence_branch", ["branch_id", "kind", "member_id", "date"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("evidence", schema=None) as batch_op:
        batch_op.drop_index("ix_evidence_branch")
        batch_op.create_index("ix_evidence_branch", ["branch_id", "kind", "date"], unique=False)
