"""The log and its seals are append-only in the database itself: triggers (every database, by migration) and, on
PostgreSQL after `campaign db harden --role`, no UPDATE, DELETE or TRUNCATE privilege for the service's role — which
still runs a sweep."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, func, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from states.models import AuditLaneMerge, AuditSeal, TransitionLog
from states.sweep import sweep
from tests.fixtures import KEY, SEAL_KEY, at, load_sample
from tests.reliability.synth import run_cli

TAMPERING = (
    "UPDATE transition_log SET actor = 'M999'",
    "DELETE FROM transition_log",
    "UPDATE audit_seal SET digest = 'x'",
    "DELETE FROM audit_seal",
    "UPDATE audit_lane_merge SET head = 'x'",
    "DELETE FROM audit_lane_merge",
)
TRUNCATING = ("TRUNCATE transition_log", "TRUNCATE audit_seal", "TRUNCATE audit_lane_merge")


def _counts(engine: Engine) -> tuple[int, int, int]:
    with Session(engine) as session:
        return (session.scalar(select(func.count()).select_from(TransitionLog)) or 0,
                session.scalar(select(func.count()).select_from(AuditSeal)) or 0,
                session.scalar(select(func.count()).select_from(AuditLaneMerge)) or 0)


def _refused(engine: Engine, statement: str) -> str:
    with pytest.raises(DBAPIError) as caught, engine.begin() as connection:
        connection.execute(text(statement))
    return str(caught.value.orig)


def test_the_log_refuses_update_and_delete_even_its_owner(engine: Engine, tmp_path: Path) -> None:
    load_sample(engine, records=False)
    sweep(engine, KEY, at("2024-03-25T00:00:01"), seal_key=SEAL_KEY, branches_per_chunk=1)  # lanes merged: rows to refuse
    before = _counts(engine)
    statements = TAMPERING + (TRUNCATING if engine.dialect.name == "postgresql" else ())
    for statement in statements:
        assert "append-only" in _refused(engine, statement), statement
    assert _counts(engine) == before
    # Someone who drops the triggers gets them back from `db harden`.
    with engine.begin() as connection:
        name = "transition_log_append_only ON transition_log" if engine.dialect.name == "postgresql" else "transition_log_no_update"
        connection.execute(text(f"DROP TRIGGER {name}"))
    env = {"CAMPAIGN_DATABASE_URL": engine.url.render_as_string(hide_password=False), "PREFECT_API_URL": "",
           "CAMPAIGN_AUDIT_ANCHORS": str(tmp_path / "anchors")}
    assert run_cli(["db", "harden"], env).code == 0
    assert "append-only" in _refused(engine, TAMPERING[0])


@pytest.mark.postgres
def test_harden_leaves_the_service_role_unable_to_rewrite_the_log(engine: Engine, tmp_path: Path) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("roles are PostgreSQL's")
    load_sample(engine)
    role = f"svc_{uuid.uuid4().hex[:10]}"
    admin_url = engine.url.render_as_string(hide_password=False)
    with engine.begin() as connection:
        connection.execute(text(f'CREATE ROLE "{role}" LOGIN'))
        # What a service role is usually given: everything on the tables, which harden then takes back for the log.
        connection.execute(text(f'GRANT USAGE ON SCHEMA public TO "{role}"'))
        connection.execute(text(f'GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON ALL TABLES IN SCHEMA public TO "{role}"'))
        connection.execute(text(f'GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO "{role}"'))
    service = create_engine(engine.url.set(username=role, password=None))
    try:
        env = {"CAMPAIGN_DATABASE_URL": admin_url, "PREFECT_API_URL": "", "CAMPAIGN_AUDIT_ANCHORS": str(tmp_path / "a")}
        assert run_cli(["db", "harden", "--role", "no-such role"], env).code == 2
        hardened = run_cli(["db", "harden", "--role", role], env)
        assert hardened.code == 0, hardened.err
        before = _counts(engine)
        for statement in (*TAMPERING, *TRUNCATING):
            assert "permission denied" in _refused(service, statement), statement
        assert _counts(engine) == before
        # The service role still does its work: a sweep logs, seals and verifies.
        as_service = {**env, "CAMPAIGN_DATABASE_URL": service.url.render_as_string(hide_password=False)}
        swept = run_cli(["sweep", KEY, "--at", "2024-03-25T00:00:01"], as_service)
        assert swept.code == 0, swept.err
        assert _counts(engine)[0] > before[0]
        assert run_cli(["audit", KEY, "--verify"], as_service).code == 0
    finally:
        service.dispose()
        with engine.begin() as connection:
            connection.execute(text(f'DROP OWNED BY "{role}"'))
            connection.execute(text(f'DROP ROLE "{role}"'))
