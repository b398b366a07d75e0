"""The transition log: append-only, each transaction's entries sealed by an HMAC under a key kept outside the database,
chained to the previous seal."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import uuid
from collections.abc import Iterator, Sequence
from typing import Any, NamedTuple

from sqlalchemy import ColumnElement, Select, String, cast, func, insert, literal, select, text
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.functions import FunctionElement

from states.clock import as_utc
from states.db import utc_text
from states.errors import Refused
from states.models import AuditSeal, TransitionLog, UTCDateTime

GENESIS = "0" * 64
KEYED = "hmac-sha256"
"""`audit_seal.scheme` of a keyed seal; NULL marks a seal written before seals were keyed (plain SHA-256)."""
DOMAIN = b"campaign-audit-seal/2\n"
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


class db_now(FunctionElement[dt.datetime]):  # noqa: N801 - reads as the SQL function it is
    """The database server's clock at the statement, in the form instants are stored in (never Python's clock)."""

    type = UTCDateTime()
    inherit_cache = True


@compiles(db_now)
def _db_now_sqlite(element: db_now, compiler: Any, **kw: Any) -> str:
    # SQLite keeps instants as 'YYYY-MM-DD HH:MM:SS.ffffff' text; its clock gives milliseconds.
    return "(strftime('%Y-%m-%d %H:%M:%f', 'now') || '000')"


@compiles(db_now, "postgresql")
def _db_now_pg(element: db_now, compiler: Any, **kw: Any) -> str:
    return "statement_timestamp()"


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
    session.execute(insert(TransitionLog).values(block=block_of(session), recorded_at=db_now(), **entry))


def log_from(session: Session, source: Select[Any] | Any) -> None:
    """Append the entries a SELECT yields (columns in LOG_COLUMNS order, without `block`)."""
    columns = [c for c in LOG_COLUMNS if c != "block"]
    session.execute(
        insert(TransitionLog).from_select(
            [*columns, "block", "recorded_at"],
            source.add_columns(literal(block_of(session)).label("block"), db_now().label("recorded_at")),
        )
    )


# -- the seal ----------------------------------------------------------------------------------------------------

SEALED_FIELDS = (*LOG_COLUMNS[:-2], "at", "recorded_at")
BATCH = 20_000


def _entries(session: Session, block: str) -> Iterator[Sequence[Any]]:
    """The block's entries in id order, each a plain tuple (id, every sealed column, instants as UTC text), in
    batches, straight from the driver's cursor: SQLAlchemy's row objects would cost more than the HMAC itself at a
    million entries. A server-side cursor on PostgreSQL; SQLite's cursor streams anyway."""
    columns: list[Any] = [TransitionLog.id]
    for name in SEALED_FIELDS:
        column = getattr(TransitionLog, name)
        columns.append(utc_text(column) if name in ("at", "recorded_at") else column)
    connection = session.connection()
    compiled = select(*columns).where(TransitionLog.block == block).order_by(TransitionLog.id).compile(
        dialect=connection.dialect
    )
    named = compiled.construct_params()
    params: Any = tuple(named[name] for name in compiled.positiontup or ()) if compiled.positional else named
    driver = connection.connection.dbapi_connection
    assert driver is not None
    postgres = connection.dialect.name == "postgresql"
    cursor = driver.cursor(name=f"audit_{uuid.uuid4().hex}") if postgres else driver.cursor()  # type: ignore[call-arg]
    try:
        cursor.execute(str(compiled), params)
        while batch := cursor.fetchmany(BATCH):
            yield batch
    finally:
        cursor.close()


def _encode(*values: str) -> bytes:
    return json.dumps(values, ensure_ascii=False, separators=(",", ":")).encode("utf-8", "surrogatepass")


def _instant(at: dt.datetime) -> str:
    return as_utc(at).strftime("%Y-%m-%d %H:%M:%S.%f")


def block_digest(session: Session, key: bytes, block: str, previous: str, at: dt.datetime) -> tuple[int, str]:
    """(entries, HMAC-SHA256 under `key` of the previous seal's digest, the block's id and time, its entries and
    their count), computed streaming. Each entry is a JSON array followed by a comma: unambiguous (NULL is null, ''
    is "", every string quoted and escaped, so no boundary can shift), encoded in C one batch per call, and the same
    bytes whatever the batch size."""
    mac = hmac.new(key, DOMAIN + _encode(previous, block, _instant(at)), hashlib.sha256)
    count = 0
    for batch in _entries(session, block):
        # '[[…],[…]]' less its outer brackets, plus ',': the entries one after another.
        encoded = json.dumps(batch, ensure_ascii=False, separators=(",", ":"))[1:-1] + ","
        mac.update(encoded.encode("utf-8", "surrogatepass"))
        count += len(batch)
    mac.update(_encode(str(count)))
    return count, mac.hexdigest()


def _legacy_text() -> ColumnElement[str]:
    """The unkeyed seals' entry text (before keyed seals): NULL and '' alike, kept only to check old blocks."""
    parts: list[ColumnElement[str]] = [cast(TransitionLog.id, String)]
    parts += [func.coalesce(getattr(TransitionLog, c), "") for c in LOG_COLUMNS[:-2]]
    parts.append(func.coalesce(utc_text(TransitionLog.at), ""))
    text_: ColumnElement[str] = parts[0]
    for part in parts[1:]:
        text_ = text_ + literal("\x1f") + part
    return text_


def _legacy_digest(session: Session, block: str, previous: str) -> tuple[int, str]:
    digest = hashlib.sha256(previous.encode())
    count = 0
    result = session.connection().execute(
        select(_legacy_text()).where(TransitionLog.block == block).order_by(TransitionLog.id)
        .execution_options(yield_per=BATCH)
    )
    for batch in result.partitions():
        for (entry,) in batch:
            digest.update(entry.encode())
            digest.update(b"\x1e")
        count += len(batch)
    return count, digest.hexdigest()


class Head(NamedTuple):
    """The chain's newest seal: what an anchor outside the database records. `chain` is the first seal's digest,
    naming the chain (so one anchor file can serve several databases)."""

    chain: str
    seal_id: int
    digest: str


def head(session: Session) -> Head | None:
    first = session.scalar(select(AuditSeal.digest).order_by(AuditSeal.id).limit(1))
    last = session.execute(select(AuditSeal.id, AuditSeal.digest).order_by(AuditSeal.id.desc()).limit(1)).first()
    if first is None or last is None:
        return None
    return Head(first, last[0], last[1])


def seal(session: Session, at: dt.datetime, key: bytes) -> None:
    """Seal the current block, if it wrote anything, under `key`: called right before the transaction commits."""
    block = session.info.pop("audit_block", None)
    if block is None:
        return
    if session.get_bind().dialect.name == "postgresql":
        # Sealers take turns, so each seal chains to the one committed before it.
        session.execute(text("SELECT pg_advisory_xact_lock(20261127)"))
    previous = session.scalar(select(AuditSeal.digest).order_by(AuditSeal.id.desc()).limit(1)) or GENESIS
    at = as_utc(at)
    count, digest = block_digest(session, key, block, previous, at)
    if count:
        session.add(AuditSeal(block=block, entries=count, digest=digest, prev_digest=previous, at=at, scheme=KEYED))
        session.flush()


class Verdict(NamedTuple):
    """What `verify` found: blocks checked, the first broken block (None when intact) and why, the head."""

    checked: int
    broken: str | None
    why: str | None
    head: Head | None


def verify(session: Session, key: bytes, anchors: Sequence[Head] = ()) -> Verdict:
    """Recompute the chain under `key`: the first broken block and why, or None. Unsealed entries break it too.
    Seals from before keyed seals (scheme NULL) are accepted only as the chain's beginning and only when a keyed seal
    follows them (which then vouches for them). Each of `anchors` (heads recorded outside the database) must still be
    on the chain with the same digest: a chain cut short (even if written to since), re-sealed under another key or
    rewritten before an anchor fails."""
    previous = GENESIS
    checked = 0
    keyed_seen = False
    first_unkeyed: str | None = None
    first: str | None = None
    anchored: dict[int, list[Head]] = {}
    for anchor in anchors:
        anchored.setdefault(anchor.seal_id, []).append(anchor)
    last: tuple[int, str, str] | None = None
    for row in session.execute(
        select(AuditSeal.id, AuditSeal.block, AuditSeal.entries, AuditSeal.digest, AuditSeal.prev_digest,
               AuditSeal.at, AuditSeal.scheme).order_by(AuditSeal.id)
    ):
        seal_id, block, entries, digest, prev_digest, at, scheme = row
        if scheme == KEYED:
            count, expected = block_digest(session, key, block, previous, at)
            keyed_seen = True
        elif scheme is None and not keyed_seen:
            count, expected = _legacy_digest(session, block, previous)
            first_unkeyed = first_unkeyed or block
        else:
            return Verdict(checked, block, f"seal scheme {scheme!r} where a keyed seal is due", None)
        if prev_digest != previous:
            return Verdict(checked, block, "it does not chain to the seal before it", None)
        if count != entries:
            return Verdict(checked, block, f"it holds {count} entries, its seal says {entries}", None)
        if not hmac.compare_digest(expected, digest):
            return Verdict(checked, block, "its entries or seal were changed (or sealed under another key)", None)
        first = first or digest
        if any(anchor.chain != first or anchor.digest != digest for anchor in anchored.pop(seal_id, ())):
            return Verdict(checked, block, f"the anchored seal {seal_id} has another digest: the chain was "
                           "rewritten or re-sealed since the anchor", None)
        previous = digest
        last = (seal_id, block, digest)
        checked += 1
    if first_unkeyed is not None and not keyed_seen:
        # Anyone can compute an unkeyed seal: from this block on, nothing vouches for the log.
        return Verdict(0, first_unkeyed, "sealed without a key, and no keyed seal follows to vouch for it "
                       "(`campaign db reseal` adds one to a chain from before keyed seals)", None)
    sealed = select(AuditSeal.block)
    stray = session.scalar(select(TransitionLog.block).where(TransitionLog.block.not_in(sealed)).limit(1))
    if stray is not None:
        return Verdict(checked, stray, "its entries are not sealed", None)
    current = Head(first, last[0], last[2]) if first is not None and last is not None else None
    if anchored:
        missing = min(anchored)
        end = f"ends at seal {last[0]}" if last else "is empty"
        return Verdict(checked, "(end)", f"the anchored seal {missing} is not on the chain, which {end}: "
                       "the log was cut short or rewritten", current)
    return Verdict(checked, None, None, current)


def reseal(session: Session, at: dt.datetime, key: bytes) -> Head | None:
    """Make an unkeyed chain (from before keyed seals) keyed, append-only: check it with the old digest, then add
    one keyed seal over an empty block chained to its head, which vouches for every block before it."""
    verdict = verify(session, key)
    if verdict.broken is None:
        return verdict.head
    if not verdict.why or not verdict.why.startswith("sealed without a key, and no keyed seal follows"):
        raise Refused(f"audit chain broken at block {verdict.broken}: {verdict.why}; nothing sealed")
    previous = session.scalar(select(AuditSeal.digest).order_by(AuditSeal.id.desc()).limit(1)) or GENESIS
    block = uuid.uuid4().hex
    at = as_utc(at)
    _, digest = block_digest(session, key, block, previous, at)
    session.add(AuditSeal(block=block, entries=0, digest=digest, prev_digest=previous, at=at, scheme=KEYED))
    session.flush()
    return head(session)


# -- append-only in the database itself --------------------------------------------------------------------------

APPEND_ONLY_TABLES = ("transition_log", "audit_seal")

_PG_FUNCTION = """
CREATE OR REPLACE FUNCTION campaign_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP USING ERRCODE = 'insufficient_privilege';
END
$$
"""


def append_only_statements(dialect: str) -> list[str]:
    """Triggers refusing UPDATE and DELETE (and TRUNCATE on PostgreSQL) of the log and its seals, idempotent: the
    migration 20261201_1800 creates the same ones; `campaign db harden` renews them."""
    if dialect == "postgresql":
        statements = [_PG_FUNCTION]
        for table in APPEND_ONLY_TABLES:
            statements += [
                f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}",
                f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table}"
                " FOR EACH ROW EXECUTE FUNCTION campaign_append_only()",
                f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table}",
                f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table}"
                " FOR EACH STATEMENT EXECUTE FUNCTION campaign_append_only()",
            ]
        return statements
    return [
        f"CREATE TRIGGER IF NOT EXISTS {table}_no_{what.lower()} BEFORE {what} ON {table}"
        f" BEGIN SELECT RAISE(ABORT, '{table} is append-only: {what} refused'); END"
        for table in APPEND_ONLY_TABLES
        for what in ("UPDATE", "DELETE")
    ]
