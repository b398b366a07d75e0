"""audit lanes: a sweep's chunks seal on lanes of their own, merged into the main chain at the sweep's end

`audit_seal.lane`: NULL for a seal of the main chain (every write outside a sweep's chunks, and the merge seals);
otherwise the lane it chains in (`states.audit.lane_id`: the campaign, the sweep and the chunk). `audit_lane_merge`:
one row per merged lane — its head digest, seal and entry counts, and the merge seal (`merge_block`) whose HMAC
covers them; the lane is its primary key, so a lane is merged at most once. Append-only like the log.

Revision ID: 20261201_2100
Revises: 20261201_2030
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "20261201_2100"
down_revision = "20261201_2030"
branch_labels = None
depends_on = None

TABLE = "audit_lane_merge"


def _append_only(dialect: str) -> list[str]:
    """The same triggers as the log's (migration 20261201_1800, `campaign db harden`), for the merge records."""
    if dialect == "postgresql":
        return [
            f"CREATE TRIGGER {TABLE}_append_only BEFORE UPDATE OR DELETE ON {TABLE}"
            " FOR EACH ROW EXECUTE FUNCTION campaign_append_only()",
            f"CREATE TRIGGER {TABLE}_no_truncate BEFORE TRUNCATE ON {TABLE}"
            " FOR EACH STATEMENT EXECUTE FUNCTION campaign_append_only()",
        ]
    return [
        f"CREATE TRIGGER IF NOT EXISTS {TABLE}_no_{what.lower()} BEFORE {what} ON {TABLE}"
        f" BEGIN SELECT RAISE(ABORT, '{TABLE} is append-only: {what} refused'); END"
        for what in ("UPDATE", "DELETE")
    ]


def upgrade() -> None:
    op.add_column("audit_seal", sa.Column("lane", sa.String(length=400), nullable=True))
    op.create_index(op.f("ix_audit_seal_lane"), "audit_seal", ["lane"])
    op.create_table(
        TABLE,
        sa.Column("lane", sa.String(length=400), nullable=False),
        sa.Column("merge_block", sa.String(length=40), nullable=False),
        sa.Column("head", sa.String(length=64), nullable=False),
        sa.Column("seals", sa.Integer(), nullable=False),
        sa.Column("entries", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("lane", name=op.f("pk_audit_lane_merge")),
    )
    op.create_index(op.f("ix_audit_lane_merge_merge_block"), TABLE, ["merge_block"])
    for statement in _append_only(op.get_bind().dialect.name):
        op.execute(statement)


def downgrade() -> None:
    """The lanes go with their column: a chain that has lanes no longer verifies under the older code, which knew
    one chain only."""
    op.drop_table(TABLE)
    op.drop_index(op.f("ix_audit_seal_lane"), table_name="audit_seal")
    with op.batch_alter_table("audit_seal") as batch_op:
        batch_op.drop_column("lane")
    if op.get_bind().dialect.name != "postgresql":
        # SQLite rebuilt the table without its triggers: back as migration 20261201_1800 made them.
        for what in ("UPDATE", "DELETE"):
            op.execute(f"CREATE TRIGGER IF NOT EXISTS audit_seal_no_{what.lower()} BEFORE {what} ON audit_seal"
                       f" BEGIN SELECT RAISE(ABORT, 'audit_seal is append-only: {what} refused'); END")
