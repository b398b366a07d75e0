"""Importing the roster: units, branches and people are added or updated (never deleted); joins and transfers."""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Column, Integer, MetaData, String, Table, and_, func, insert, literal, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from states import audit, authority, counts
from states.db import changed, insert_ignoring_duplicates
from states.errors import MalformedFile
from states.labels import ROLE_CODES, ROLE_LABELS
from states.models import (
    Branch,
    BranchHistory,
    BranchProgress,
    Campaign,
    FiredDeadline,
    ImportRecord,
    MemberProgress,
    Person,
    Phase,
    Unit,
    UTCDateTime,
)
from states.source import Source, check_id, check_plain, rows

ROLES = (
    "member",
    "branch_secretary",
    "committee_secretary",
    "party_group_deputy",
    "party_group_secretary",
    "office_director",
    "inspector",
)
LOCALES = ("zh-CN", "en")
ROLE_LIST = ", ".join(f"{r} {ROLE_LABELS[r]['zh-CN']}" for r in ROLES)
COLUMNS = ("member_id", "name", "branch_id", "branch_name", "unit", "role", "email")


@dataclass
class RosterResult:
    added: int = 0
    updated: int = 0
    transferred: int = 0
    joined: int = 0
    unchanged: bool = False


STAGE = "roster_stage"


def _checked(source: Source, branches: dict[str, dict[str, Any]], failed: list[MalformedFile]) -> Iterator[tuple[Any, ...]]:
    """Each row for the staging table, its fields checked as it streams by; the first bad row stops the stream and
    is kept in `failed` (a person named twice with different values, found set-wise afterwards, may come earlier)."""
    try:
        for line, row in rows(source, COLUMNS, ("locale",)):
            check_plain(source, line, row)
            member_id = check_id(source, line, "member_id", row["member_id"])
            if not row["name"] or len(row["name"]) > 200:
                raise MalformedFile(source.path, line, "name", zh="须填姓名（不超过 200 个字符）",
                                    en="a name is required (at most 200 characters)")
            role = ROLE_CODES.get(row["role"], row["role"])
            if role not in ROLES:
                raise MalformedFile(source.path, line, "role", zh=f"{role!r} 不是以下角色之一：{ROLE_LIST}",
                                    en=f"{role!r} is not one of {ROLE_LIST}")
            if not row["unit"] or len(row["unit"]) > 200:
                raise MalformedFile(source.path, line, "unit", zh="须填单位（不超过 200 个字符）",
                                    en="a unit is required (at most 200 characters)")
            branch_id = row["branch_id"] or None
            if branch_id is None and role != "inspector":
                raise MalformedFile(source.path, line, "branch_id", zh="除督导组成员外，每人都须属于一个党支部",
                                    en="everyone but an inspector belongs to a branch")
            if branch_id is not None:
                check_id(source, line, "branch_id", branch_id)
                if not row["branch_name"]:
                    raise MalformedFile(source.path, line, "branch_name", zh="须填支部名称", en="a branch needs a name")
                seen = branches.setdefault(
                    branch_id, {"branch_id": branch_id, "name": row["branch_name"], "unit": row["unit"], "line": line}
                )
                if seen["name"] != row["branch_name"]:
                    raise MalformedFile(
                        source.path, line, "branch_name", zh=f"党支部 {branch_id} 在第{seen['line']}行名为 {seen['name']!r}",
                        en=f"branch {branch_id} is named {seen['name']!r} on line {seen['line']}",
                    )
            email = row["email"] or None
            if email is not None and ("@" not in email or any(c.isspace() for c in email) or len(email) > 320):
                raise MalformedFile(source.path, line, "email", zh=f"{email!r} 不是电子邮箱地址", en=f"{email!r} is not an e-mail address")
            locale = row.get("locale") or "zh-CN"
            if locale not in LOCALES:
                raise MalformedFile(source.path, line, "locale", zh=f"{locale!r} 不是 {'、'.join(LOCALES)} 之一",
                                    en=f"{locale!r} is not one of {', '.join(LOCALES)}")
            yield line, member_id, row["name"], branch_id, row["unit"], role, email, locale
    except MalformedFile as exc:
        failed.append(exc)


PERSON_COLUMNS = ("member_id", "name", "branch_id", "unit", "role", "email", "locale")


def _stage_roster(session: Session, source: Source) -> tuple[Table, dict[str, dict[str, Any]]]:
    """The file in a staging table, one row per distinct person (the first line naming them); a bad row raised."""
    branches: dict[str, dict[str, Any]] = {}
    failed: list[MalformedFile] = []
    table = stage(
        session,
        STAGE,
        [
            Column("line", Integer, nullable=False),
            Column("member_id", String(64), nullable=False),
            Column("name", String(200), nullable=False),
            Column("branch_id", String(64)),
            Column("unit", String(200), nullable=False),
            Column("role", String(32), nullable=False),
            Column("email", String(320)),
            Column("locale", String(8), nullable=False),
        ],
        _checked(source, branches, failed),
    )
    connection = session.connection()
    connection.exec_driver_sql(f"CREATE INDEX ix_{STAGE}_member ON {STAGE} (member_id, line)")
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql(f"ANALYZE {STAGE}")
    s = table.c
    # A person named twice must be named the same way: the first line that differs from an earlier one.
    f = table.alias("f")
    twice = session.scalar(
        select(func.count()).select_from(
            select(s.member_id).group_by(s.member_id).having(func.count() > 1).limit(1).subquery()
        )
    )
    if twice:
        bad = session.execute(
            select(s.line, s.member_id)
            .join(f, and_(f.c.member_id == s.member_id, f.c.line < s.line))
            .where(or_(*[f.c[c].is_distinct_from(s[c]) for c in PERSON_COLUMNS[1:]]))
            .order_by(s.line)
            .limit(1)
        ).first()
        if bad is not None and (not failed or bad[0] < (failed[0].line or 0)):
            raise MalformedFile(source.path, bad[0], "member_id", zh=f"{bad[1]} 出现两次，内容不同",
                                en=f"{bad[1]} appears twice with different values")
    if failed:
        raise failed[0]
    return table, branches


def _upsert(session: Session, model: Any, source: Any, columns: list[str], key: list[str], updated: list[str]) -> None:
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    statement = dialect.insert(model).from_select(columns, source)
    excluded = statement.excluded
    session.connection().execute(
        statement.on_conflict_do_update(index_elements=key, set_={c: excluded[c] for c in updated})
    )


def _log_changes(session: Session, changes: Any, branch: Any, cause: str, actor: str, at: dt.datetime) -> None:
    """One log entry per row of `changes` (member_id, old, new, …, line): reason 'old → new', in file order."""
    c = changes.c
    audit.log_from(
        session,
        select(
            literal(""), c.member_id, branch, literal(None, String), literal(None, String),
            literal(cause), literal(None, String), literal(None, String), literal(actor),
            func.coalesce(c.old, literal("—")) + literal(" → ") + func.coalesce(c.new, literal("—")),
            literal(None, String), literal(at, UTCDateTime()),
        ).order_by(c.line),
    )


def import_roster(session: Session, source: Source, actor: str, at: dt.datetime) -> RosterResult:
    """Add or update everyone in the file, in the caller's transaction; a bad row rejects the whole file.

    Set-wise: the file is streamed into a staging table (COPY on PostgreSQL), checked, and merged with one
    INSERT … ON CONFLICT per table; transfers are found by a join, never one ORM object per person.
    An act with authority: by a leader as the roster stands, or, into an empty database, by one the file names."""
    empty = authority.roster_is_empty(session)
    if not empty:
        authority.importer(session, actor, zh="导入名册", en="import a roster")
    table, branches = _stage_roster(session, source)
    if empty:
        s = table.c
        authority.first_roster(
            actor, session.scalar(select(s.role).where(s.member_id == actor).order_by(s.line).limit(1))
        )
    result = RosterResult()
    if session.scalar(
        select(ImportRecord.id).where(ImportRecord.kind == "roster", ImportRecord.sha256 == source.sha256)
    ):
        session.connection().exec_driver_sql(f"DROP TABLE {STAGE}")
        result.unchanged = True
        return result
    s = table.c
    head = table.alias("head")
    people = (
        select(*[s[c] for c in PERSON_COLUMNS], s.line)
        .where(s.line == select(func.min(head.c.line)).where(head.c.member_id == s.member_id).scalar_subquery())
        .subquery("people")
    )
    n = people.c
    connection = session.connection()
    units = select(s.unit).distinct().where(s.unit.is_not(None))
    connection.execute(insert_ignoring_duplicates(session, Unit).from_select(["name"], units))
    for branch in sorted(branches.values(), key=lambda b: b["line"]):
        connection.execute(
            (postgresql if connection.dialect.name == "postgresql" else sqlite)
            .insert(Branch)
            .values(branch_id=branch["branch_id"], name=branch["name"], unit=branch["unit"])
            .on_conflict_do_update(index_elements=["branch_id"], set_={"name": branch["name"], "unit": branch["unit"]})
        )
    total = session.scalar(select(func.count()).select_from(people)) or 0
    existing = select(func.count()).select_from(people).join(Person, Person.member_id == n.member_id)
    known = session.scalar(existing) or 0
    result.added = total - known
    result.updated = session.scalar(
        existing.where(or_(*[getattr(Person, c).is_distinct_from(n[c]) for c in PERSON_COLUMNS[1:]]))
    ) or 0
    # Each change of a person's branch or role is its own entry (old → new), written set-wise from a join.
    moved = (
        select(Person.member_id, Person.branch_id.label("old"), n.branch_id.label("new"), n.line)
        .join(people, n.member_id == Person.member_id)
        .where(Person.branch_id.is_distinct_from(n.branch_id))
        .subquery("moved")
    )
    result.transferred = session.scalar(select(func.count()).select_from(moved)) or 0
    if result.transferred:
        _log_changes(session, moved, moved.c.new, "transfer", actor, at)
    recast = (
        select(Person.member_id, Person.role.label("old"), n.role.label("new"), n.branch_id, n.line)
        .join(people, n.member_id == Person.member_id)
        .where(Person.role != n.role)
        .subquery("recast")
    )
    if session.scalar(select(func.count()).select_from(recast)):
        _log_changes(session, recast, recast.c.branch_id, "role_change", actor, at)
    _upsert(session, Person, select(*[n[c] for c in PERSON_COLUMNS]).where(n.member_id.is_not(None)),
            list(PERSON_COLUMNS), ["member_id"], list(PERSON_COLUMNS[1:]))
    connection.execute(
        insert_ignoring_duplicates(session, BranchHistory).from_select(
            ["member_id", "branch_id", "since"],
            select(n.member_id, n.branch_id, literal(at, UTCDateTime())).where(n.branch_id.is_not(None)),
        )
    )
    connection.exec_driver_sql(f"DROP TABLE {STAGE}")
    session.expire_all()
    for campaign_key in session.scalars(select(Campaign.key)):
        result.joined += enrol_newcomers(session, campaign_key, actor, at)
    session.add(
        ImportRecord(kind="roster", scope="", sha256=source.sha256, filename=source.path, rows=total, at=at, actor=actor)
    )
    audit.log(
        session, campaign_key="", member_id=None, branch_id=None, from_state=None, to_state=None,
        cause="roster_import", actor=actor, reason=f"{source.path}: {total} people", at=at,
    )
    return result


def _chunks(items: list[str], size: int) -> list[list[str]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def enrol_newcomers(session: Session, key: str, actor: str, at: dt.datetime) -> int:
    """Participants and branches without progress in campaign `key` get it, set-based.

    Before the campaign's start has fired they are enrolled; after it and before its last deadline they join in
    study (and are told); after the campaign they are left out.
    """
    fired = set(session.scalars(select(FiredDeadline.name).where(FiredDeadline.campaign_key == key)))
    last = session.scalar(select(Phase.name).where(Phase.campaign_key == key).order_by(Phase.seq.desc()).limit(1))
    if last in fired:
        return 0
    state = "study" if "start" in fired else "enrolled"
    new_branches = select(Branch.branch_id, literal(key), literal(state), literal(at), literal(1)).where(
        Branch.branch_id.in_(select(Person.branch_id).where(Person.role != "inspector", Person.branch_id.is_not(None))),
        Branch.branch_id.not_in(select(BranchProgress.branch_id).where(BranchProgress.campaign_key == key)),
    )
    enrolled = changed(session.execute(
        insert(BranchProgress).from_select(
            ["branch_id", "campaign_key", "state", "state_since", "version"], new_branches
        ).execution_options(preserve_rowcount=True)
    ))
    counts.shift(session, key, "branch", None, state, enrolled)
    from states.engine import new_step

    step = new_step()
    newcomers = select(Person.member_id, literal(key), literal(state), literal(at), literal(1), literal(step)).where(
        Person.role != "inspector",
        Person.branch_id.is_not(None),
        Person.member_id.not_in(select(MemberProgress.member_id).where(MemberProgress.campaign_key == key)),
    )
    joined = changed(session.execute(
        insert(MemberProgress).from_select(
            ["member_id", "campaign_key", "state", "state_since", "version", "step"], newcomers
        ).execution_options(preserve_rowcount=True)  # SQLAlchemy 2 keeps an INSERT's rowcount only when asked
    ))
    counts.shift(session, key, "member", None, state, joined)
    if joined and state == "study":
        audit.log_from(
            session,
            select(
                MemberProgress.campaign_key, MemberProgress.member_id, Person.branch_id, literal(None),
                MemberProgress.state, literal("join"), literal("join"), literal(None), literal(actor),
                literal(""), literal(None), literal(at),
            )
            .join(Person, Person.member_id == MemberProgress.member_id)
            .where(MemberProgress.step == step),
        )
        from states.engine import queue_members_moved
        from states.evaluate import context

        end = session.scalar(select(Phase.end).where(Phase.campaign_key == key, Phase.name == "study"))
        queue_members_moved(session, context(session, key, at), step, "phase_started", "study", str(end), "study")
    return joined


def stage(session: Session, name: str, columns: list[Column[Any]], rows: Iterable[tuple[Any, ...]]) -> Table:
    """A temporary staging table of the caller's transaction, filled in bulk: COPY on PostgreSQL, executemany on
    SQLite (batches of 20,000 rows, so a million-row file never sits in memory as Python rows)."""
    table = Table(name, MetaData(), *columns, prefixes=["TEMPORARY"])
    connection = session.connection()
    connection.exec_driver_sql(f"DROP TABLE IF EXISTS {name}")
    table.create(connection)
    dbapi = connection.connection.dbapi_connection
    assert dbapi is not None
    names = ", ".join(c.name for c in columns)
    if connection.dialect.name == "postgresql":
        with dbapi.cursor() as cursor, cursor.copy(f"COPY {name} ({names}) FROM STDIN") as copy:  # type: ignore[attr-defined]
            for row in rows:
                copy.write_row(row)
        return table
    cursor = dbapi.cursor()
    sql = f"INSERT INTO {name} ({names}) VALUES ({', '.join('?' for _ in columns)})"
    iterator = iter(rows)
    while batch := list(itertools.islice(iterator, 20_000)):
        cursor.executemany(sql, batch)
    cursor.close()
    return table


def participants(session: Session, branch_id: str) -> int:
    return session.scalar(
        select(func.count()).select_from(Person).where(and_(Person.branch_id == branch_id, Person.role != "inspector"))
    ) or 0


__all__ = ["import_roster", "enrol_newcomers", "participants", "ROLES", "RosterResult"]
