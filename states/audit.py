"""The transition log: append-only, each transaction's entries sealed by an HMAC under a key kept outside the database,
chained to the previous seal of its chain.

Chains. Every write seals on the main chain, whose head is what anchors record — except a sweep's chunk units: each
chunk seals on a lane of its own (`lane_id`: campaign, sweep, chunk), chained within itself from a genesis derived
under the key from the lane's id, so parallel chunks never wait for each other's commit. The sweep's finish unit
merges every lane of the campaign not yet merged into the main chain with one merge seal, whose HMAC covers the
previous main head and each lane's (id, head, seals, entries) in lane order. A lane not yet merged (its sweep is
running, or stopped before its end) is *pending*: its own seals are checked, but no main-chain seal or anchor vouches
for its completeness until the campaign's next sweep merges it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple
from urllib.parse import quote

from sqlalchemy import ColumnElement, Select, String, cast, func, insert, literal, select, text
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.functions import FunctionElement

from states.clock import as_utc
from states.db import utc_text
from states.errors import Refused
from states.models import AuditLaneMerge, AuditSeal, TransitionLog, UTCDateTime

GENESIS = "0" * 64
KEYED = "hmac-sha256"
"""`audit_seal.scheme` of a keyed seal; NULL marks a seal written before seals were keyed (plain SHA-256)."""
MERGED = "hmac-merge"
"""`audit_seal.scheme` of a merge seal: lanes taken into the main chain."""
DOMAIN = b"campaign-audit-seal/2\n"
LANE_DOMAIN = b"campaign-audit-lane/1\n"
MERGE_DOMAIN = b"campaign-audit-merge/1\n"
MAIN_LOCK = 20261127
"""PostgreSQL advisory lock of the main chain: its sealers (and merges) take turns."""
SWEEP_LOCK = 20261128
"""Advisory locks per sweep (the second key hashes it): lane sealers share it, a merge takes it alone."""
LANE_LOCK = 20261129
"""Advisory locks per lane: two transactions on one lane (never in a proper sweep) still chain in turn."""
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
    """The main chain's head (lanes are vouched for through their merge seals on it)."""
    main = AuditSeal.lane.is_(None)
    first = session.scalar(select(AuditSeal.digest).where(main).order_by(AuditSeal.id).limit(1))
    last = session.execute(
        select(AuditSeal.id, AuditSeal.digest).where(main).order_by(AuditSeal.id.desc()).limit(1)
    ).first()
    if first is None or last is None:
        return None
    return Head(first, last[0], last[1])


# -- lanes -------------------------------------------------------------------------------------------------------

def lane_id(campaign: str, sweep_id: str, chunk: str) -> str:
    """A sweep chunk's lane: the campaign, the sweep and the chunk's first branch, each percent-encoded, joined by
    '/'. Everything a chunk's process needs is in the sweep's plan; a campaign's lanes share a prefix no other
    campaign's has (`_campaign_prefix`), so the campaign's next sweep can merge what a stopped one left."""
    return "/".join(quote(part, safe="") for part in (campaign, sweep_id, chunk))


def _campaign_prefix(campaign: str) -> str:
    return quote(campaign, safe="") + "/"


def _sweep_of(lane: str) -> str:
    """The lane's campaign and sweep, as the prefix every lane of that sweep starts with."""
    return lane.rsplit("/", 1)[0] + "/"


def lane_genesis(key: bytes, lane: str) -> str:
    """What a lane's first seal chains to: keyed, and bound to the lane's id (so no seal moves between lanes)."""
    return hmac.new(key, LANE_DOMAIN + _encode(lane), hashlib.sha256).hexdigest()


def on_lane(session: Session, lane: str | None) -> None:
    """The current transaction seals on `lane` (None: on the main chain). Set by the sweep per unit."""
    if lane is None:
        session.info.pop("audit_lane", None)
    else:
        session.info["audit_lane"] = lane


def merge_when_sealing(session: Session, campaign: str) -> None:
    """The current transaction's seal first merges the campaign's unmerged lanes (the sweep's finish unit)."""
    session.info["audit_merge"] = campaign


def _lock(session: Session, *keys: int | str, shared: bool = False) -> None:
    """A PostgreSQL advisory lock until the transaction ends; names hashed to the lock's second key. SQLite has one
    writer at a time already."""
    if session.get_bind().dialect.name != "postgresql":
        return
    values = [k if isinstance(k, int) else int.from_bytes(hashlib.sha256(k.encode()).digest()[:4], "big", signed=True)
              for k in keys]
    function = "pg_advisory_xact_lock_shared" if shared else "pg_advisory_xact_lock"
    session.execute(text(f"SELECT {function}({', '.join(str(v) for v in values)})"))


def _sweep_merged(session: Session, sweep: str) -> bool:
    """Whether a lane of the sweep (its prefix) was merged: the sweep's lanes are then closed."""
    merged = AuditLaneMerge.lane
    return session.scalar(select(merged).where(func.substr(merged, 1, len(sweep)) == sweep).limit(1)) is not None


def _previous(session: Session, key: bytes, lane: str | None) -> str:
    """The digest the current block chains to, its chain held for this transaction: the main chain's head in turn
    with every other main-chain sealer; a lane's head with only its own sweep's merge to wait for."""
    if lane is None:
        _lock(session, MAIN_LOCK)
        found = session.scalar(
            select(AuditSeal.digest).where(AuditSeal.lane.is_(None)).order_by(AuditSeal.id.desc()).limit(1)
        )
        return found or GENESIS
    sweep = _sweep_of(lane)
    _lock(session, SWEEP_LOCK, sweep, shared=True)
    _lock(session, LANE_LOCK, lane)
    if _sweep_merged(session, sweep):
        raise Refused(zh=f"审计通道 {lane} 所属的扫描已并入主链；本单元的结果均不保留（由该活动的下一次扫描办理）",
                      en=f"the sweep of audit lane {lane} was merged into the main chain already; nothing of this "
                      "unit is kept (its campaign's next sweep does it)")
    found = session.scalar(select(AuditSeal.digest).where(AuditSeal.lane == lane).order_by(AuditSeal.id.desc()).limit(1))
    return found or lane_genesis(key, lane)


def merge_digest(
    key: bytes, previous: str, block: str, at: dt.datetime, lanes: Sequence[tuple[str, str, int, int]]
) -> str:
    """HMAC under `key` of the previous main-chain seal, the merge's block id and time, and each lane's (id, head,
    seals, entries) in lane order (Python's, never a database collation's), and their number."""
    mac = hmac.new(key, MERGE_DOMAIN + _encode(previous, block, _instant(at)), hashlib.sha256)
    for lane, digest, seals, entries in sorted(lanes):
        mac.update(_encode(lane, digest, str(seals), str(entries)))
    mac.update(_encode(str(len(lanes))))
    return mac.hexdigest()


def _unmerged(session: Session, campaign: str) -> list[str]:
    """The campaign's lanes no merge has taken, in order."""
    prefix = _campaign_prefix(campaign)
    found = session.scalars(
        select(AuditSeal.lane).distinct()
        .where(AuditSeal.lane.is_not(None), func.substr(AuditSeal.lane, 1, len(prefix)) == prefix)
        .where(AuditSeal.lane.not_in(select(AuditLaneMerge.lane)))
    )
    return sorted(lane for lane in found if lane is not None)


def merge(session: Session, at: dt.datetime, key: bytes, campaign: str) -> int:
    """Take every lane of the campaign not yet merged into the main chain under one merge seal: the lanes of this
    sweep and of any earlier one that stopped before its end. Each merged sweep's lane sealers are waited for (its
    lock taken alone), and its lanes are closed from then on. Returns the lanes merged."""
    _lock(session, MAIN_LOCK)
    sweeps = sorted({_sweep_of(lane) for lane in _unmerged(session, campaign)})
    if not sweeps:
        return 0
    for sweep in sweeps:
        _lock(session, SWEEP_LOCK, sweep)
    # Read again with the sweeps held: a lane whose first seal was in flight is in now, and none can follow.
    lanes = [lane for lane in _unmerged(session, campaign) if _sweep_of(lane) in sweeps]
    heads: dict[str, tuple[str, int, int]] = {}
    for lane, digest, entries in session.execute(
        select(func.coalesce(AuditSeal.lane, ""), AuditSeal.digest, AuditSeal.entries)
        .where(AuditSeal.lane.in_(lanes)).order_by(AuditSeal.id)
    ):
        _, seals, total = heads.get(lane, ("", 0, 0))
        heads[lane] = (digest, seals + 1, total + entries)
    merged = [(lane, *heads[lane]) for lane in lanes]
    previous = _previous(session, key, None)
    block = uuid.uuid4().hex
    at = as_utc(at)
    digest = merge_digest(key, previous, block, at, merged)
    session.add_all(
        AuditLaneMerge(lane=lane, merge_block=block, head=head_, seals=seals, entries=entries)
        for lane, head_, seals, entries in merged
    )
    session.add(AuditSeal(block=block, entries=len(merged), digest=digest, prev_digest=previous, at=at, scheme=MERGED))
    session.flush()
    return len(merged)


def seal(session: Session, at: dt.datetime, key: bytes) -> None:
    """Seal the current block, if it wrote anything, under `key`, on its lane or the main chain (after the merge its
    transaction asked for, if any): called right before the transaction commits."""
    block = session.info.pop("audit_block", None)
    lane = session.info.pop("audit_lane", None)
    campaign = session.info.pop("audit_merge", None)
    at = as_utc(at)
    if campaign is not None:
        merge(session, at, key, campaign)
    if block is None:
        return
    previous = _previous(session, key, lane)
    count, digest = block_digest(session, key, block, previous, at)
    if count:
        session.add(AuditSeal(block=block, entries=count, digest=digest, prev_digest=previous, at=at, scheme=KEYED,
                              lane=lane))
        session.flush()


class Pending(NamedTuple):
    """A lane no merge seal has taken in yet: its seals check, but nothing on the main chain vouches for it."""

    lane: str
    sweep: str
    seals: int
    entries: int


class Verdict(NamedTuple):
    """What `verify` found: blocks checked, the first broken block (None when intact) and why, the head, and the
    lanes still pending (intact so far, not yet merged)."""

    checked: int
    broken: str | None
    why: str | None
    head: Head | None
    pending: tuple[Pending, ...] = ()
    why_zh: str | None = None
    """`why` as a Chinese reader reads it."""


class _Broken(Exception):
    def __init__(self, block: str, *, zh: str, en: str, head: Head | None = None) -> None:
        super().__init__(en)
        self.block, self.why, self.why_zh, self.head = block, en, zh, head


@dataclass
class _Lane:
    head: str
    first_block: str
    seals: int = 0
    entries: int = 0
    merged_by: str | None = None


class _Walk:
    """One pass over every seal in id order: each main-chain seal checked against the main chain's previous seal,
    each lane seal against its lane's, each merge seal against the lanes as recomputed so far."""

    def __init__(self, session: Session, key: bytes, anchors: Sequence[Head]) -> None:
        self.session, self.key = session, key
        self.previous = GENESIS
        self.checked = 0
        self.keyed_seen = False
        self.first_unkeyed: str | None = None
        self.first: str | None = None
        self.last: tuple[int, str] | None = None
        self.lanes: dict[str, _Lane] = {}
        self.anchored: dict[int, list[Head]] = {}
        for anchor in anchors:
            self.anchored.setdefault(anchor.seal_id, []).append(anchor)

    def step(self, seal_id: int, block: str, entries: int, digest: str, prev_digest: str, at: dt.datetime,
             scheme: str | None, lane: str | None) -> None:
        if lane is None:
            self._main(seal_id, block, entries, digest, prev_digest, at, scheme)
        else:
            self._lane(lane, block, entries, digest, prev_digest, at, scheme)
        self.checked += 1

    def _main(self, seal_id: int, block: str, entries: int, digest: str, prev_digest: str, at: dt.datetime,
              scheme: str | None) -> None:
        what = "entries"
        if scheme == KEYED:
            count, expected = block_digest(self.session, self.key, block, self.previous, at)
            self.keyed_seen = True
        elif scheme == MERGED:
            count, expected = self._merged(block, at)
            what = "lanes"
            self.keyed_seen = True
        elif scheme is None and not self.keyed_seen:
            count, expected = _legacy_digest(self.session, block, self.previous)
            self.first_unkeyed = self.first_unkeyed or block
        else:
            raise _Broken(block, zh=f"封印方案为 {scheme!r}，此处应为带密钥的封印",
                          en=f"seal scheme {scheme!r} where a keyed seal is due")
        _check(block, ("前一个封印", "the seal before it"), self.previous, prev_digest, what, count, entries, expected,
               digest)
        self.first = self.first or digest
        if any(a.chain != self.first or a.digest != digest for a in self.anchored.pop(seal_id, ())):
            raise _Broken(block, zh=f"锚定的封印 {seal_id} 摘要已不同：锚定之后审计链被改写或重新加封",
                          en=f"the anchored seal {seal_id} has another digest: the chain was rewritten or "
                          "re-sealed since the anchor")
        self.previous = digest
        self.last = (seal_id, digest)

    def _merged(self, block: str, at: dt.datetime) -> tuple[int, str]:
        """(lanes, expected digest) of a merge seal; each lane it names must end, as recomputed, where it says."""
        rows = sorted((lane, digest, seals, entries) for lane, digest, seals, entries in self.session.execute(
            select(AuditLaneMerge.lane, AuditLaneMerge.head, AuditLaneMerge.seals, AuditLaneMerge.entries)
            .where(AuditLaneMerge.merge_block == block)
        ))
        for lane, digest, seals, entries in rows:
            state = self.lanes.get(lane)
            if state is None:
                raise _Broken(block, zh=f"它并入通道 {lane}，但此前没有该通道的封印（通道被删去）",
                              en=f"it merges lane {lane}, which has no seal before it (the lane was dropped)")
            if state.merged_by is not None:
                raise _Broken(block, zh=f"它再次并入通道 {lane}：区块 {state.merged_by} 已并入过",
                              en=f"it merges lane {lane} again: block {state.merged_by} merged it before")
            if (state.head, state.seals, state.entries) != (digest, seals, entries):
                raise _Broken(block, zh=f"通道 {lane} 至此有 {state.seals} 个封印、{state.entries} 条记录，并入封印记为 "
                              f"{seals} 和 {entries}，或止于别处（通道被截断或改写）",
                              en=f"lane {lane} holds {state.seals} seals and {state.entries} entries up to here, "
                              f"the merge says {seals} and {entries}, or ends elsewhere (a lane cut or rewritten)")
            state.merged_by = block
        return len(rows), merge_digest(self.key, self.previous, block, at, rows)

    def _lane(self, lane: str, block: str, entries: int, digest: str, prev_digest: str, at: dt.datetime,
              scheme: str | None) -> None:
        state = self.lanes.get(lane)
        if state is None:
            state = self.lanes[lane] = _Lane(lane_genesis(self.key, lane), block)
        if state.merged_by is not None:
            raise _Broken(block, zh=f"它在区块 {state.merged_by} 并入通道 {lane} 之后才加封到该通道",
                          en=f"it was sealed on lane {lane} after block {state.merged_by} merged the lane")
        if scheme != KEYED:
            raise _Broken(block, zh=f"通道 {lane} 上的封印方案为 {scheme!r}，此处应为带密钥的封印",
                          en=f"seal scheme {scheme!r} on lane {lane}, where a keyed seal is due")
        count, expected = block_digest(self.session, self.key, block, state.head, at)
        before = (
            ("本通道的前一个封印", "its lane's seal before it") if state.seals
            else (f"通道 {lane} 的起点", f"the genesis of its lane {lane}")
        )
        _check(block, before, state.head, prev_digest, "entries", count, entries, expected, digest)
        state.head, state.seals, state.entries = digest, state.seals + 1, state.entries + count

    def end(self) -> Verdict:
        """The checks of the whole: old unkeyed seals vouched for, no unsealed entry, no merge record without its
        seal, no lane added to a sweep after its merge, every anchor on the chain; the lanes still pending."""
        if self.first_unkeyed is not None and not self.keyed_seen:
            # Anyone can compute an unkeyed seal: from this block on, nothing vouches for the log.
            self.checked = 0
            raise _Broken(self.first_unkeyed, zh="未用密钥加封，其后也没有带密钥的封印为它作证"
                          "（`campaign db reseal` 可为带密钥封印之前的审计链补上一个）",
                          en="sealed without a key, and no keyed seal follows to vouch for it "
                          "(`campaign db reseal` adds one to a chain from before keyed seals)")
        stray = self.session.scalar(
            select(TransitionLog.block).where(TransitionLog.block.not_in(select(AuditSeal.block))).limit(1)
        )
        if stray is not None:
            raise _Broken(stray, zh="其记录未加封", en="its entries are not sealed")
        merges = select(AuditSeal.block).where(AuditSeal.scheme == MERGED, AuditSeal.lane.is_(None))
        orphan = self.session.execute(
            select(AuditLaneMerge.merge_block, AuditLaneMerge.lane).where(AuditLaneMerge.merge_block.not_in(merges))
            .limit(1)
        ).first()
        if orphan is not None:
            raise _Broken(orphan[0], zh=f"有一条记录将通道 {orphan[1]} 并入其下，但主链上没有它的并入封印",
                          en=f"a record merges lane {orphan[1]} under it, but no merge seal of it is on the "
                          "main chain")
        merged_sweeps = {_sweep_of(lane): s.merged_by for lane, s in self.lanes.items() if s.merged_by}
        pending = []
        for lane, state in sorted(self.lanes.items(), key=lambda item: item[1].first_block):
            if state.merged_by is not None:
                continue
            if _sweep_of(lane) in merged_sweeps:
                merged = merged_sweeps[_sweep_of(lane)]
                raise _Broken(state.first_block, zh=f"通道 {lane} 是在区块 {merged} 并入该次扫描的通道之后才加入的",
                              en=f"lane {lane} was added to a sweep after block {merged} merged that sweep's lanes")
            pending.append(Pending(lane, lane.split("/")[-2], state.seals, state.entries))
        current = Head(self.first, *self.last) if self.first is not None and self.last is not None else None
        if self.anchored:
            missing = min(self.anchored)
            end = f"ends at seal {self.last[0]}" if self.last else "is empty"
            end_zh = f"止于封印 {self.last[0]}" if self.last else "为空"
            raise _Broken("(end)", zh=f"锚定的封印 {missing} 不在审计链上（审计链{end_zh}）：日志被截短或改写",
                          en=f"the anchored seal {missing} is not on the chain, which {end}: the log was cut "
                          "short or rewritten", head=current)
        return Verdict(self.checked, None, None, current, tuple(pending))


_WHAT_ZH = {"entries": "条记录", "lanes": "条通道"}


def _check(block: str, before: tuple[str, str], previous: str, prev_digest: str, what: str, count: int, entries: int,
           expected: str, digest: str) -> None:
    """`before` names, in Chinese and English, what the block must chain to; `what` is what it seals."""
    if prev_digest != previous:
        raise _Broken(block, zh=f"它没有接在{before[0]}之后", en=f"it does not chain to {before[1]}")
    if count != entries:
        raise _Broken(block, zh=f"它有 {count} {_WHAT_ZH[what]}，其封印记为 {entries}",
                      en=f"it holds {count} {what}, its seal says {entries}")
    if not hmac.compare_digest(expected, digest):
        raise _Broken(block, zh=f"其{_WHAT_ZH[what][1:]}或封印被改动（或用另一把密钥加封）",
                      en=f"its {what} or seal were changed (or sealed under another key)")


def verify(session: Session, key: bytes, anchors: Sequence[Head] = ()) -> Verdict:
    """Recompute every chain under `key` in the order the seals were written: the first broken block and why, or
    None, and the lanes pending. Unsealed entries break it too. Seals from before keyed seals (scheme NULL) are
    accepted only as the main chain's beginning and only when a keyed seal follows them (which then vouches for
    them). A lane must chain from its keyed genesis, end where its merge seal says, be merged at most once and gain
    nothing after; a lane not merged yet is pending, not broken: its sweep is running, or stopped before its end and
    leaves it to the campaign's next sweep (docs/reliability.md). Each of `anchors` (main-chain heads recorded
    outside the database) must still be on the chain with the same digest: a chain cut short (even if written to
    since), re-sealed under another key or rewritten before an anchor fails."""
    walk = _Walk(session, key, anchors)
    try:
        for row in session.execute(
            select(AuditSeal.id, AuditSeal.block, AuditSeal.entries, AuditSeal.digest, AuditSeal.prev_digest,
                   AuditSeal.at, AuditSeal.scheme, AuditSeal.lane).order_by(AuditSeal.id)
        ):
            walk.step(*row)
        return walk.end()
    except _Broken as broken:
        return Verdict(walk.checked, broken.block, broken.why, broken.head, why_zh=broken.why_zh)


def reseal(session: Session, at: dt.datetime, key: bytes) -> Head | None:
    """Make an unkeyed chain (from before keyed seals) keyed, append-only: check it with the old digest, then add
    one keyed seal over an empty block chained to its head, which vouches for every block before it."""
    verdict = verify(session, key)
    if verdict.broken is None:
        return verdict.head
    if not verdict.why or not verdict.why.startswith("sealed without a key, and no keyed seal follows"):
        raise Refused(zh=f"审计链在区块 {verdict.broken} 处断裂：{verdict.why_zh}；未加封任何内容",
                      en=f"audit chain broken at block {verdict.broken}: {verdict.why}; nothing sealed")
    previous = _previous(session, key, None)
    block = uuid.uuid4().hex
    at = as_utc(at)
    _, digest = block_digest(session, key, block, previous, at)
    session.add(AuditSeal(block=block, entries=0, digest=digest, prev_digest=previous, at=at, scheme=KEYED))
    session.flush()
    return head(session)


# -- append-only in the database itself --------------------------------------------------------------------------

APPEND_ONLY_TABLES = ("transition_log", "audit_seal", "audit_lane_merge")

_PG_FUNCTION = """
CREATE OR REPLACE FUNCTION campaign_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP USING ERRCODE = 'insufficient_privilege';
END
$$
"""


def append_only_statements(dialect: str) -> list[str]:
    """Triggers refusing UPDATE and DELETE (and TRUNCATE on PostgreSQL) of the log and its seals, idempotent: the
    migrations 20261201_1800 and 20261201_2100 create the same ones; `campaign db harden` renews them."""
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
