"""keyed audit seals, the real time of every log entry, and the log append-only in the database itself

`transition_log.recorded_at`: the database server's clock at the INSERT (NULL for entries written before).
`audit_seal.scheme`: 'hmac-sha256' for keyed seals; NULL marks the seals written before (plain SHA-256), which
`audit --verify` accepts only as the chain's beginning with a keyed seal after them.
Triggers refuse UPDATE and DELETE (and TRUNCATE on PostgreSQL) of the log and its seals: tampering then needs the
schema itself (DROP TRIGGER), not a stray statement; `campaign db harden` also revokes the privileges on PostgreSQL.

Revision ID: 20261201_1800
Revises: 20261128_0002
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "20261201_1800"
down_revision = "20261128_0002"
branch_labels = None
depends_on = None

TABLES = ("transition_log", "audit_seal")

PG_FUNCTION = """
CREATE OR REPLACE FUNCTION campaign_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP USING ERRCODE = 'insufficient_privilege';
END
$$
"""


def append_only_statements(dialect: str) -> list[str]:
    """The triggers (idempotent), for this migration and for `campaign db harden`."""
    if dialect == "postgresql":
        statements = [PG_FUNCTION]
        for table in TABLES:
            statements += [
                f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}",
                f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table}"
                " FOR EACH ROW EXECUTE FUNCTION campaign_append_only()",
                f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table}",
                f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table}"
                " FOR EACH STATEMENT EXECUTE FUNCTION campaign_append_only()",
            ]
        return statements
    statements = []
    for table in TABLES:
        for what in ("UPDATE", "DELETE"):
            statements.append(
                f"CREATE TRIGGER IF NOT EXISTS {table}_no_{what.lower()} BEFORE {what} ON {table}"
                f" BEGIN SELECT RAISE(ABORT, '{table} is append-only: {what} refused'); END"
            )
    return statements


def upgrade() -> None:
    op.add_column("transition_log", sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("audit_seal", sa.Column("scheme", sa.String(length=16), nullable=True))
    for statement in append_only_statements(op.get_bind().dialect.name):
        op.execute(statement)


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    for table in TABLES:
        if dialect == "postgresql":
            op.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table}")
        else:
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_update")
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_delete")
    if dialect == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS campaign_append_only()")
    with op.batch_alter_table("audit_seal") as batch_op:
        batch_op.drop_column("scheme")
    with op.batch_alter_table("transition_log") as batch_op:
        batch_op.drop_column("recorded_at")
