"""The transition log: append-only, sealed per transaction by a hash over its entries and the previous seal."""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from typing import Any

from sqlalchemy import ColumnElement, Select, String, cast, func, insert, literal, select, text
from sqlalchemy.orm import Session

from states.clock import as_utc
from states.db import utc_text
from states.models import AuditSeal, TransitionLog

GENESIS = "0" * 64
LOG_COLUMNS = (
    "campaign_key",
    "member_id",
    "branch_id",
    "from_state",
    "to_state",
    "cause",
    "trigger",
    "sweep_id",
    "actor",
    "reason",
    "flow_run_id",
    "at",
    "block",
)


def block_of(session: Session) -> str:
    """The block id of the session's current transaction (one seal per transaction)."""
    block = session.info.get("audit_block")
    if block is None:
        block = session.info["audit_block"] = uuid.uuid4().hex
    return block


def log(session: Session, **entry: Any) -> None:
    """Append one entry (an operator action, a join, a transfer …) to the current block."""
    entry.setdefault("reason", "")
    entry.setdefault("flow_run_id", None)
    session.execute(insert(TransitionLog).values(block=block_of(session), **entry))


def log_from(session: Session, source: Select[Any] | Any) -> None:
    """Append the entries a SELECT yields (columns in LOG_COLUMNS order, without `block`)."""
    columns = [c for c in LOG_COLUMNS if c != "block"]
    session.execute(
        insert(TransitionLog).from_select(
            [*columns, "block"], source.add_columns(literal(block_of(session)).label("block"))
        )
    )


def _entry_text() -> ColumnElement[str]:
    """One entry as text, built by the database: id and every column, unit-separated, the instant in UTC.
    Hashing a string per row is what is left to Python (an ORM object or a Python format per row cost 10× more)."""
    parts: list[ColumnElement[str]] = [cast(TransitionLog.id, String)]
    parts += [func.coalesce(getattr(TransitionLog, c), "") for c in LOG_COLUMNS[:-2]]
    parts.append(func.coalesce(utc_text(TransitionLog.at), ""))
    text_: ColumnElement[str] = parts[0]
    for part in parts[1:]:
        text_ = text_ + literal("\x1f") + part
    return text_


def block_digest(session: Session, block: str, previous: str) -> tuple[int, str]:
    digest = hashlib.sha256(previous.encode())
    count = 0
    # A Core statement on the session's connection: no ORM row processing for a million entries.
    result = session.connection().execute(
        select(_entry_text()).where(TransitionLog.block == block).order_by(TransitionLog.id)
        .execution_options(yield_per=20_000)
    )
    for batch in result.partitions():
        for (entry,) in batch:
            digest.update(entry.encode())
            digest.update(b"\x1e")
        count += len(batch)
    return count, digest.hexdigest()


def seal(session: Session, at: dt.datetime) -> None:
    """Seal the current block, if it wrote anything: called right before the transaction commits."""
    block = session.info.pop("audit_block", None)
    if block is None:
        return
    if session.get_bind().dialect.name == "postgresql":
        # Sealers take turns, so each seal chains to the one committed before it.
        session.execute(text("SELECT pg_advisory_xact_lock(20261127)"))
    previous = session.scalar(select(AuditSeal.digest).order_by(AuditSeal.id.desc()).limit(1)) or GENESIS
    count, digest = block_digest(session, block, previous)
    if count:
        session.add(AuditSeal(block=block, entries=count, digest=digest, prev_digest=previous, at=as_utc(at)))
        session.flush()


def verify(session: Session) -> tuple[int, str | None]:
    """Recompute the chain: (blocks checked, the first broken block or None). Unsealed entries break it too."""
    previous = GENESIS
    checked = 0
    for seal_row in session.scalars(select(AuditSeal).order_by(AuditSeal.id)):
        count, digest = block_digest(session, seal_row.block, previous)
        if seal_row.prev_digest != previous or digest != seal_row.digest or count != seal_row.entries:
            return checked, seal_row.block
        previous = seal_row.digest
        checked += 1
    sealed = select(AuditSeal.block)
    stray = session.scalar(select(TransitionLog.block).where(TransitionLog.block.not_in(sealed)).limit(1))
    if stray is not None:
        return checked, stray
    total = session.scalar(select(func.count()).select_from(AuditSeal)) or 0
    return total, None
