"""Helpers of the Prefect flow tests: a campaign database the flows find through CAMPAIGN_*, the sample loaded."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from readers import read_table
from states import audit, sample
from states.clock import parse_instant
from states.models import BranchProgress, DoneChunk, FiredDeadline, MemberProgress, Notice, TransitionLog
from states.plan import load_plan, read_plan
from states.records import import_records
from states.roster import import_roster
from tests.fixtures import SEAL_KEY

KEY = "sfao-2024"
TZ = "Asia/Shanghai"


def at(text: str) -> dt.datetime:
    return parse_instant(text, TZ, simulation=True)


def plan_2024() -> dict[str, Any]:
    return yaml.safe_load(sample.plan_2024_path().read_text(encoding="utf-8"))


def use_database(monkeypatch: pytest.MonkeyPatch, folder: Path, url: str | None = None) -> Engine:
    """Point the flows (which read CAMPAIGN_* at every run) at a fresh database (SQLite in `folder` unless `url`
    names another); returns its engine."""
    from flows import runtime

    folder.mkdir(parents=True, exist_ok=True)
    monkeypatch.setenv("CAMPAIGN_DATABASE_URL", url or f"sqlite:///{folder / 'campaign.db'}")
    monkeypatch.setenv("CAMPAIGN_OUTBOX_DIR", str(folder / "outbox"))
    monkeypatch.setenv("CAMPAIGN_REPORT_DIR", str(folder / "reports"))
    monkeypatch.setenv("CAMPAIGN_AUDIT_ANCHORS", str(folder / "audit-anchors"))
    monkeypatch.setenv("CAMPAIGN_KEY_DIR", str(folder / "keys"))  # the one-time codes' key, never the repository's
    monkeypatch.setenv("CAMPAIGN_CHUNK_BRANCHES", "3")  # nine branches: three chunks, three tasks per deadline
    return runtime.engine()


def load_sample(db: Engine, folder: Path, plan_file: Path | None = None, records: bool = True) -> None:
    """The sample office, a plan (the 2024 one by default) and, for the 2024 plan, every demo record up front."""
    when = at("2024-03-01T09:00")
    plan, _ = read_plan(plan_file or sample.plan_2024_path())
    with Session(db, expire_on_commit=False) as session, session.begin():
        import_roster(session, read_table(sample.roster_path()), "M002", when)
        load_plan(session, plan, "M002", when)
        audit.seal(session, when, SEAL_KEY)
    if records:
        path = sample.write_csv(
            folder / "records.csv", sample.demo_records(plan_2024(), sample.roster_path()), sample.RECORD_FIELDS
        )
        with Session(db, expire_on_commit=False) as session, session.begin():
            import_records(session, read_table(path), "M002", when)
            audit.seal(session, when, SEAL_KEY)


def member_states(db: Engine, key: str = KEY) -> dict[str, str]:
    with Session(db) as session:
        return dict(
            session.execute(
                select(MemberProgress.member_id, MemberProgress.state).where(MemberProgress.campaign_key == key)
            ).all()
        )


def campaign_slots_in_use(key: str = KEY) -> int:
    """Slots held of the campaign's concurrency limit on the session's test server."""
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        return client.read_global_concurrency_limit_by_name(f"campaign-{key}").active_slots


def snapshot(db: Engine) -> dict[str, Any]:
    """Everything a sweep decides, without the ids and instants that differ between two databases."""
    with Session(db) as session:
        return {
            "members": member_states(db),
            "branches": dict(session.execute(select(BranchProgress.branch_id, BranchProgress.state)).all()),
            "fired": sorted(session.scalars(select(FiredDeadline.name))),
            "chunks": sorted(session.execute(select(DoneChunk.deadline, DoneChunk.lo, DoneChunk.hi)).all()),
            "notices": sorted(session.scalars(select(Notice.key))),
            "moves": sorted(
                session.execute(
                    select(
                        TransitionLog.member_id, TransitionLog.branch_id, TransitionLog.from_state,
                        TransitionLog.to_state, func.count(),
                    ).group_by(
                        TransitionLog.member_id, TransitionLog.branch_id, TransitionLog.from_state,
                        TransitionLog.to_state,
                    )
                ).all(),
                key=repr,
            ),
        }
