"""Facts: the tallies the conditions read, kept per subject and window as evidence arrives, and read back.

Each records import merges one aggregate over its new rows into `member_fact` / `branch_fact` (INSERT … ON
CONFLICT DO UPDATE), in the import's own transaction; rows it corrected in place have their subjects' facts
recomputed from the evidence. A measure up to a cut-off sums the windows that end by it; in the window holding
the cut-off, a subject whose facts run past it (evidence dated later) is tallied from that window's rows up to
the cut-off instead. Facts are derived data: `differences` recomputes them and names what disagrees.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    Subquery,
    Table,
    and_,
    case,
    column,
    delete,
    except_,
    false,
    func,
    insert,
    literal_column,
    or_,
    select,
    table,
    union,
    union_all,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from states.conditions import EvalContext, Scope, Tally, Window, names, tallies, windows
from states.models import BranchFact, Evidence, MemberFact, Phase

TABLES: dict[Scope, Table] = {"member": MemberFact.__table__, "branch": BranchFact.__table__}  # type: ignore[dict-item]
SUBJECT: dict[Scope, str] = {"member": "member_id", "branch": "branch_id"}
SCOPES: tuple[Scope, ...] = ("member", "branch")
TOUCHED = "fact_touched"

Subjects = Callable[[ColumnElement[Any]], ColumnElement[bool]]
"""A filter on a subject column (the facts table's, or the evidence's): the chunk's members, one branch …"""


def kept(scope: Scope) -> tuple[Tally, ...]:
    """Every tally a condition of `scope` reads: the facts table has exactly their columns."""
    return tallies(scope, names(scope))


def campaign_windows(session: Session, key: str | None = None) -> dict[str, tuple[Window, ...]]:
    query = select(Phase.campaign_key, Phase.start, Phase.end).order_by(Phase.campaign_key, Phase.seq)
    if key is not None:
        query = query.where(Phase.campaign_key == key)
    spans: dict[str, list[tuple[dt.date, dt.date]]] = {}
    for campaign_key, start, end in session.execute(query):
        spans.setdefault(campaign_key, []).append((start, end))
    return {k: windows(v) for k, v in spans.items()}


def _day(value: dt.date) -> ColumnElement[Any]:
    # Window bounds are written into the SQL, so PostgreSQL sees one and the same CASE in SELECT and GROUP BY.
    return literal_column(f"'{value.isoformat()}'")


def _window_of(wins: Sequence[Window]) -> tuple[ColumnElement[Any], ColumnElement[Any]]:
    """The window seq and first day of an evidence row's date (rows outside the campaign are filtered apart)."""
    if len(wins) == 1:
        return literal_column(str(wins[0].seq)), _day(wins[0].lo)
    seq = case(*[(Evidence.date <= _day(w.hi), literal_column(str(w.seq))) for w in wins[:-1]],
               else_=literal_column(str(wins[-1].seq)))
    lo = case(*[(Evidence.date <= _day(w.hi), _day(w.lo)) for w in wins[:-1]], else_=_day(wins[-1].lo))
    return seq, lo


def _from_evidence(key: str, scope: Scope, wins: Sequence[Window], *where: ColumnElement[bool]) -> Select[Any]:
    """Facts rows (campaign, subject, window, last date, the tallies' columns) from the evidence rows `where`."""
    subject = Evidence.member_id if scope == "member" else Evidence.branch_id
    seq, lo = _window_of(wins)
    every = kept(scope)
    kinds = sorted({kind for t in every for kind in t.kinds})
    values: list[ColumnElement[Any]] = [
        literal_column(f"'{key}'"), subject.expression, seq, func.max(Evidence.date), *[c for t in every for c in t.build(lo)]
    ]
    query: Select[Any] = (
        select(*[value.label(name) for name, value in zip(_columns(scope), values, strict=True)])
        .where(
            Evidence.kind.in_(kinds),
            Evidence.date.between(_day(wins[0].lo), _day(wins[-1].hi)),
            Evidence.member_id.is_not(None) if scope == "member" else Evidence.member_id.is_(None),
            *where,
        )
        .group_by(subject, seq)
    )
    return query


def _columns(scope: Scope) -> list[str]:
    return ["campaign_key", SUBJECT[scope], "window_seq", "last_date", *[c for t in kept(scope) for c in t.stored()]]


def _insert(session: Session, table: Table) -> Any:
    return (postgresql if session.get_bind().dialect.name == "postgresql" else sqlite).insert(table)


def last_evidence_id(session: Session) -> int:
    """The greatest evidence id now: an import's new rows all lie above it."""
    return session.scalar(select(func.max(Evidence.id))) or 0


_touched = table(TOUCHED, column("member_id"), column("branch_id"))


def note_corrections(session: Session, rows: Select[str | None, str]) -> None:
    """Before evidence is corrected in place: remember the subjects (`rows`: member_id, branch_id) of the rows about
    to change, whose facts `merge_import` then recomputes from the evidence."""
    connection = session.connection()
    connection.exec_driver_sql(f"DROP TABLE IF EXISTS {TOUCHED}")
    connection.exec_driver_sql(f"CREATE TEMPORARY TABLE {TOUCHED} (member_id VARCHAR(64), branch_id VARCHAR(64))")
    session.execute(insert(_touched).from_select(["member_id", "branch_id"], rows))


def merge_import(session: Session, import_id: int, since: int, corrected: bool) -> None:
    """Merge the facts of the evidence import `import_id` added (ids above `since`) into every campaign's facts:
    one aggregate a campaign and scope, upserted; then the subjects of corrected rows recomputed whole."""
    every = campaign_windows(session)
    new = (Evidence.id > since, Evidence.import_id == import_id)
    for key, wins in every.items():
        for scope in SCOPES:
            table = TABLES[scope]
            statement = _insert(session, table).from_select(_columns(scope), _from_evidence(key, scope, wins, *new))
            update: dict[str, Any] = {"last_date": case(
                (statement.excluded.last_date > table.c.last_date, statement.excluded.last_date),
                else_=table.c.last_date,
            )}
            for tally in kept(scope):
                update.update(tally.merged(table.c, statement.excluded))
            session.execute(statement.on_conflict_do_update(
                index_elements=["campaign_key", SUBJECT[scope], "window_seq"], set_=update
            ))
    if not corrected:
        return
    # The corrected rows now carry this import's id and an id at or below `since`: their new subjects.
    session.execute(insert(_touched).from_select(
        ["member_id", "branch_id"],
        select(Evidence.member_id, Evidence.branch_id).where(Evidence.import_id == import_id, Evidence.id <= since),
    ))
    members = select(_touched.c.member_id).where(_touched.c.member_id.is_not(None)).distinct()
    branches = select(_touched.c.branch_id).distinct()
    for key, wins in every.items():
        rebuild(session, key, wins, {"member": members, "branch": branches})
    session.connection().exec_driver_sql(f"DROP TABLE {TOUCHED}")


def rebuild(
    session: Session,
    key: str,
    wins: Sequence[Window] | None = None,
    only: dict[Scope, Select[Any]] | None = None,
) -> None:
    """Recompute campaign `key`'s facts from the evidence: all of them, or the subjects `only` selects per scope."""
    if wins is None:
        wins = campaign_windows(session, key).get(key, ())
    for scope in SCOPES:
        table = TABLES[scope]
        subject = table.c[SUBJECT[scope]]
        gone = delete(table).where(table.c.campaign_key == key)
        where: list[ColumnElement[bool]] = []
        if only is not None:
            gone = gone.where(subject.in_(only[scope]))
            evidence_subject = Evidence.member_id if scope == "member" else Evidence.branch_id
            where.append(evidence_subject.in_(only[scope]))
        session.execute(gone)
        if wins:
            session.execute(insert(table).from_select(_columns(scope), _from_evidence(key, scope, wins, *where)))


def _comparable(scope: Scope, query: Select[Any]) -> Select[Any]:
    """The facts columns as compared: sums rounded (added in another order they may differ in the last bits)."""
    sub = query.subquery()
    columns = [sub.c[name] for name in _columns(scope)]
    sums = {t.name for t in kept(scope) if t.how == "sum"}
    return select(*[func.round(c, 6).label(c.name) if c.name in sums else c for c in columns])


def differences(session: Session) -> list[tuple[str, Scope, int]]:
    """(campaign, scope, (subject, window) pairs that differ) wherever the kept facts differ from the facts recomputed now; also
    facts of a campaign that no longer exists."""
    found: list[tuple[str, Scope, int]] = []
    every = campaign_windows(session)
    for scope in SCOPES:
        table = TABLES[scope]
        stray = session.execute(
            select(table.c.campaign_key, func.count()).where(table.c.campaign_key.not_in(list(every) or [""]))
            .group_by(table.c.campaign_key)
        ).all()
        found += [(key, scope, count) for key, count in stray]
        for key, wins in every.items():
            stored = _comparable(scope, select(*[table.c[n] for n in _columns(scope)]).where(table.c.campaign_key == key))
            fresh = _comparable(scope, _from_evidence(key, scope, wins))
            subject = SUBJECT[scope]
            one = except_(stored, fresh).subquery()
            other = except_(fresh, stored).subquery()
            keys = union(
                select(one.c[subject], one.c.window_seq), select(other.c[subject], other.c.window_seq)
            ).subquery()
            count = session.scalar(select(func.count()).select_from(keys)) or 0
            if count:
                found.append((key, scope, count))
    return found


def repair(session: Session) -> None:
    """Recompute every campaign's facts from the evidence and drop those of campaigns that no longer exist."""
    every = campaign_windows(session)
    for scope in SCOPES:
        table = TABLES[scope]
        session.execute(delete(table).where(table.c.campaign_key.not_in(list(every) or [""])))
    for key, wins in every.items():
        rebuild(session, key, wins)


def read(ctx: EvalContext, scope: Scope, wanted: Sequence[Tally], subjects: Subjects | None) -> Subquery:
    """One row per subject with facts: `subject` and a column per tally in `wanted`, as the evidence up to the
    context's last day gives them. `subjects` restricts the rows read (a chunk's members); None reads them all."""
    table = TABLES[scope]
    subject = table.c[SUBJECT[scope]]
    last = ctx.last_day
    wins = [w for w in ctx.windows if w.lo <= last]
    full = [w for w in wins if w.hi <= last]
    part = next((w for w in wins if w.hi > last), None)
    kept_rows = select(subject.label("subject"), *[table.c[t.name].label(t.name) for t in wanted]).where(
        table.c.campaign_key == ctx.campaign_key
    )
    clauses: list[ColumnElement[bool]] = []
    if full:
        clauses.append(table.c.window_seq <= full[-1].seq)
    if part is not None:
        clauses.append(and_(table.c.window_seq == part.seq, table.c.last_date <= last))
    kept_rows = kept_rows.where(or_(*clauses) if clauses else false())
    if subjects is not None:
        kept_rows = kept_rows.where(subjects(subject))
    if part is None:
        if len(full) <= 1:
            return kept_rows.subquery("f")
        parts = [kept_rows]
    else:
        # Subjects whose facts in the cut-off's window run past it: that window's rows up to the cut-off.
        evidence_subject = Evidence.member_id if scope == "member" else Evidence.branch_id
        kinds = sorted({kind for t in wanted for kind in t.kinds})
        raw = (
            select(evidence_subject.label("subject"), *[t.aggregate().label(t.name) for t in wanted])
            .join(table, and_(
                subject == evidence_subject,
                table.c.campaign_key == ctx.campaign_key,
                table.c.window_seq == part.seq,
                table.c.last_date > last,
            ))
            .where(Evidence.kind.in_(kinds), Evidence.date.between(part.lo, last))
            .group_by(evidence_subject)
        )
        if scope == "branch":
            raw = raw.where(Evidence.member_id.is_(None))
        if subjects is not None:
            raw = raw.where(subjects(subject))
        parts = [kept_rows, raw]
        if not full:  # one window: a subject is in one part or the other
            return union_all(*parts).subquery("f")
    both = union_all(*parts).subquery("u")
    return (
        select(both.c.subject, *[t.combined(both.c[t.name]).label(t.name) for t in wanted])
        .group_by(both.c.subject)
        .subquery("f")
    )
