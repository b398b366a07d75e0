"""the log's campaign index becomes (campaign_key, at): whether anything was decided after T (`stuck --at`,
`report --at`) seeks instead of reading the campaign's whole log, and the sweep's INSERTs still keep one index for
it (it replaces ix_transition_log_campaign_key, whose queries its first column serves)

Revision ID: 20261201_2220
Revises: 20261201_2210
"""
from __future__ import annotations

from alembic import op

revision = "20261201_2220"
down_revision = "20261201_2210"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_transition_log_campaign_at", "transition_log", ["campaign_key", "at"], unique=False)
    op.drop_index("ix_transition_log_campaign_key", table_name="transition_log")


def downgrade() -> None:
    op.create_index("ix_transition_log_campaign_key", "transition_log", ["campaign_key"], unique=False)
    op.drop_index("ix_transition_log_campaign_at", table_name="transition_log")
