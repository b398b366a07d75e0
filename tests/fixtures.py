"""Shared fixtures (a pytest plugin): databases on SQLite and PostgreSQL, the sample office loaded into them."""

from __future__ import annotations

import datetime as dt
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from readers import read_table
from states import audit
from states.clock import parse_instant
from states.db import ensure_schema, make_engine
from states.plan import Plan, load_plan
from states.records import import_records
from states.roster import import_roster
from states.sample import RECORD_FIELDS, demo_records, plan_2024_path, roster_path, write_csv

PG_ADMIN = os.environ.get("CAMPAIGN_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
KEY = "sfao-2024"
# The audit seal's key for every test (the CLI and flows read it from the environment, as the service may).
os.environ.setdefault("CAMPAIGN_AUDIT_KEY", "5ea1" * 16)
SEAL_KEY = bytes.fromhex(os.environ["CAMPAIGN_AUDIT_KEY"])


def at(text: str) -> dt.datetime:
    """A time in the sample plan's timezone."""
    return parse_instant(text, "Asia/Shanghai", simulation=True)


def _postgres_database() -> Iterator[str]:
    """A database of our own on the machine's PostgreSQL, dropped afterwards; skipped (or failed) when none answers."""
    import psycopg

    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = PG_ADMIN.replace("postgresql+psycopg://", "postgresql://")
    try:
        with psycopg.connect(admin, autocommit=True, connect_timeout=3) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.OperationalError as exc:
        if os.environ.get("CAMPAIGN_TEST_POSTGRES") == "required":
            pytest.fail(f"PostgreSQL is required (CAMPAIGN_TEST_POSTGRES=required) but does not answer: {exc}")
        pytest.skip(f"no PostgreSQL answers at {PG_ADMIN} ({str(exc).splitlines()[0]})")
    try:
        yield PG_ADMIN.rsplit("/", 1)[0] + "/" + name
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def counts_agree(engine: Engine) -> None:
    """The members and branches per state kept as rows move (`states.counts`) equal a count of the rows, in every
    campaign: checked after each test that used a database, so every test's moves are an oracle for the counts."""
    from sqlalchemy import inspect

    from states import counts
    from states.models import Campaign

    if not inspect(engine).has_table("progress_count"):
        return  # a test that left the schema downgraded below the counts' migration
    with Session(engine) as session:
        for key in session.scalars(select(Campaign.key)):
            assert counts.differences(session, key) == [], key


def _engine(kind: str, tmp: Path) -> Iterator[Engine]:
    if kind == "sqlite":
        engine = make_engine(f"sqlite:///{tmp / 'campaign.db'}")
        ensure_schema(engine)
        yield engine
        counts_agree(engine)
        engine.dispose()
        return
    for url in _postgres_database():
        engine = make_engine(url)
        ensure_schema(engine)
        try:
            yield engine
            counts_agree(engine)
        finally:
            engine.dispose()


DIALECTS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


@pytest.fixture(params=DIALECTS)
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """An empty, migrated database: once on SQLite, once on PostgreSQL."""
    yield from _engine(request.param, tmp_path)


@pytest.fixture
def sqlite_engine(tmp_path: Path) -> Iterator[Engine]:
    yield from _engine("sqlite", tmp_path)


def load_sample(engine: Engine, records: bool = True, plan: dict | None = None) -> dict:
    """The sample office, the seed's 2024 plan and (optionally) the demo evidence, as a user would import them."""
    plan = plan or yaml.safe_load(plan_2024_path().read_text(encoding="utf-8"))
    when = at("2024-03-01T09:00")
    with Session(engine) as session, session.begin():
        import_roster(session, read_table(roster_path()), "M002", when)
        load_plan(session, Plan.model_validate(plan), "M002", when)
        audit.seal(session, when, SEAL_KEY)
    if records:
        path = write_csv(Path(os.environ.get("TMPDIR", "/tmp")) / f"records-{uuid.uuid4().hex}.csv", demo_records(plan, roster_path()), RECORD_FIELDS)
        try:
            with Session(engine) as session, session.begin():
                import_records(session, read_table(path), "M002", when)
                audit.seal(session, when, SEAL_KEY)
        finally:
            path.unlink()
    return plan


@pytest.fixture
def sample(engine: Engine) -> Engine:
    """The sample office with the 2024 plan and its demo evidence, on each dialect."""
    load_sample(engine)
    return engine
