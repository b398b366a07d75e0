"""What every flow needs from its surroundings: settings, one engine per database, units of work, the time T."""

from __future__ import annotations

import datetime as dt
import functools
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from states import anchors, audit
from states.clock import parse_instant
from states.db import absolute_url, ensure_schema, make_engine
from states.errors import CampaignError, NotFound
from states.keys import secret_key
from states.models import Campaign
from states.settings import Settings, load_settings

REFUSAL_PREFIX = "campaign: "


class QuietRefusals(logging.Filter):
    """A run the rules refuse ends Failed with the CLI's one line as its state message. When such a run executes in
    a served deployment's process, Prefect's engine then raises `FailedRun` for it and logs that with a traceback
    ("Engine execution exited with unexpected exception"): a traceback for a user's mistake, in the UI and the
    terminal. This drops exactly those records; any other failure keeps its traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not (type(exc).__name__ == "FailedRun" and str(exc).startswith(REFUSAL_PREFIX))


for _name in ("prefect.flow_runs", "prefect.engine"):
    if not any(isinstance(f, QuietRefusals) for f in logging.getLogger(_name).filters):
        logging.getLogger(_name).addFilter(QuietRefusals())


def settings() -> Settings:
    """Read per call: a test (or the demo) points CAMPAIGN_* at its own database before a flow runs."""
    return load_settings()


@functools.lru_cache(maxsize=8)
def _engine(url: str) -> Engine:
    engine = make_engine(url)
    ensure_schema(engine)
    return engine


def engine(found: Settings | None = None) -> Engine:
    """One engine per database URL and process (its pool is shared by every task of the process)."""
    return _engine(absolute_url((found or settings()).database_url))


def audit_key() -> bytes:
    """The audit seal's key, from the environment or the key folder (never from Prefect or the database)."""
    return secret_key(settings(), "audit")


@contextmanager
def write(db: Engine, at: dt.datetime, *, anchor: bool = True) -> Iterator[Session]:
    """One unit of work: commit on success, sealed in the audit chain right before it commits; the head anchored
    outside the database after (a sweep anchors once at its end instead: `anchor=False` per unit)."""
    key = audit_key()
    with Session(db, expire_on_commit=False) as session, session.begin():
        yield session
        audit.seal(session, at, key)
    if anchor:
        anchor_head(db)


def anchor_head(db: Engine) -> audit.Head | None:
    """Append the chain's head to the anchor file; returns it (for the `<campaign>-audit-head` artifact)."""
    with read(db) as session:
        head = audit.head(session)
    anchors.append(settings().audit_anchors, anchors.database_label(db.url), head)
    return head


@contextmanager
def read(db: Engine) -> Iterator[Session]:
    with Session(db, expire_on_commit=False) as session, session.begin():
        yield session


def instant(db: Engine, campaign: str, at: str | dt.datetime | None) -> dt.datetime:
    """The flow's time T: an ISO string (no offset = the campaign's timezone), an aware datetime, or now."""
    with read(db) as session:
        found = session.get(Campaign, campaign)
        if found is None:
            raise NotFound(zh=f"没有活动 {campaign!r}", en=f"unknown campaign {campaign!r}")
        tz = found.timezone
    simulation = settings().simulation  # a flow parameter is a stranger's input: the future only in simulation
    if isinstance(at, dt.datetime):
        return parse_instant(at.isoformat(), tz, simulation=simulation)
    return parse_instant(at, tz, simulation=simulation)


def flow_run_id() -> str | None:
    """The current flow run's id, written into every log row it causes."""
    from prefect.context import FlowRunContext

    context = FlowRunContext.get()
    return str(context.flow_run.id) if context and context.flow_run else None


def one_line(exc: BaseException) -> str:
    """A user's mistake as the CLI shows it by default: one line, no traceback, in Chinese (the office's
    administrators read the UI)."""
    text = (exc.zh if isinstance(exc, CampaignError) else str(exc)).strip().splitlines()
    return f"{REFUSAL_PREFIX}{text[0] if text else type(exc).__name__}"


def jsonable(value: Any) -> Any:
    """Flow results are shown in the UI: datetimes as ISO strings, tuples as lists."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [jsonable(v) for v in value]
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return value
