"""Importing evidence: every row checked, the whole file refused on one bad row, the same file twice a no-op."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    Column,
    Date,
    Float,
    Integer,
    String,
    Table,
    Text,
    and_,
    func,
    insert,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.orm import Session

from states import audit, authority, facts
from states.clock import parse_date
from states.db import changed
from states.errors import MalformedFile, Unauthorized
from states.labels import KIND_CODES, KIND_LABELS, VALUE_LABELS
from states.models import Branch, BranchHistory, Evidence, ImportRecord, Person
from states.roster import stage as staging_table
from states.source import Source, check_id, checked, number

MEMBER_KINDS = (
    "study_self",
    "study_concentrated",
    "study_check",
    "analysis_report",
    "satisfaction_evaluation",
    "heart_talk",
    "rectification_plan",
    "good_deed",
    "pledge_application",
    "admonishment_talk",
    "disposition",
    "oath",
    "public_commitment",
)
BRANCH_KINDS = (
    "mobilization_meeting",
    "concentrated_training",
    "discussion_meeting",
    "opinions_solicited",
    "analysis_meeting",
    "branch_rectification_plan",
    "theme_activity",
    "oath_ceremony",
)
MEETINGS = tuple(k for k in BRANCH_KINDS if k != "opinions_solicited")
COLUMNS = ("member_id", "branch_id", "kind", "date", "value")
EARLIEST, LATEST = dt.date(1900, 1, 1), dt.date(2999, 12, 31)


@dataclass
class RecordsResult:
    added: int = 0
    updated: int = 0
    unchanged: bool = False


def _value(source: Source, line: int, kind: str, value: str, branch_size: int | None) -> float | None:
    """Checks a value for its kind; returns the number the measures add up, if the kind has one."""
    if kind in ("study_self", "study_concentrated"):
        return number(source, line, "value", value, 0.0, 24.0)  # hours of one sitting
    if kind == "study_check":
        if value not in ("pass", "fail"):
            raise MalformedFile(source.path, line, "value", zh=f"{KIND_LABELS['study_check']['zh-CN']}只能是 通过 或 未通过，不是 {value!r}",
                                en=f"study_check is 'pass' or 'fail', not {value!r}")
        return None
    if kind == "satisfaction_evaluation":
        return number(source, line, "value", value, 0.0, 100.0)
    if kind == "opinions_solicited":
        count = number(source, line, "value", value, 0, 10_000_000)
        if not count.is_integer():
            raise MalformedFile(source.path, line, "value", zh=f"{value!r} 不是整数", en=f"{value!r} is not a whole count")
        return count
    if kind in MEETINGS and value != "":
        signed = number(source, line, "value", value, 0, 10_000_000)
        if not signed.is_integer():
            raise MalformedFile(source.path, line, "value", zh=f"{value!r} 不是签到人数（整数）",
                                en=f"{value!r} is not a whole number signed in")
        if branch_size is not None and signed > branch_size:
            raise _crowded(source, line, int(signed), branch_size)
        return signed
    if len(value) > 2000:
        raise MalformedFile(source.path, line, "value", zh="超过 2000 个字符", en="is longer than 2000 characters")
    return None


def _crowded(source: Source, line: int, signed: int, branch_size: int) -> MalformedFile:
    return MalformedFile(source.path, line, "value", zh=f"签到 {signed} 人，但该党支部只有 {branch_size} 名参加人员",
                         en=f"{signed} signed in, but the branch has {branch_size} participants")


STAGE = "evidence_stage"


HOURS = frozenset(("study_self", "study_concentrated"))
KINDS = frozenset(MEMBER_KINDS + BRANCH_KINDS)
MEMBER_KIND_SET = frozenset(MEMBER_KINDS)
KIND_LIST = ", ".join(f"{k} {KIND_LABELS[k]['zh-CN']}" for k in MEMBER_KINDS + BRANCH_KINDS)
STUDY_CHECK_CODES = {VALUE_LABELS[v]["zh-CN"]: v for v in ("pass", "fail")}


def _fields(source: Source) -> Iterator[tuple[int, list[str]]]:
    """(line, [member_id, branch_id, kind, date, value, ref]) for each data row, stripped: `source.rows` without a
    dict per row (the same header checks, the same messages)."""
    header = checked(source, COLUMNS, ("ref",))
    index = [header.index(c) for c in COLUMNS]
    ref_at = header.index("ref") if "ref" in header else None
    for line, values in source.data:
        fields = [values[i].strip() for i in index]
        fields.append(values[ref_at].strip() if ref_at is not None else "")
        yield line, fields


def _staged(source: Source, deferred: list[MalformedFile]) -> Iterator[tuple[Any, ...]]:
    """The file's rows for the staging table, each field checked as it streams by (a malformed field stops the
    import at once); a value that does not fit its kind is kept in `deferred`, as it ranks with the checks against
    the roster, which run set-wise once every row is staged. Ids and dates seen once are not checked again."""
    dates: dict[str, str] = {}
    ids: set[str] = set()
    last_member = ""
    for line, (member_id, branch_id, kind, text, value, ref) in _fields(source):
        if kind not in KINDS:
            kind = KIND_CODES.get(kind, kind)  # the organisation's own word for it
            if kind not in KINDS:
                raise MalformedFile(source.path, line, "kind", zh=f"没有类别 {kind!r}；可用的类别：{KIND_LIST}",
                                    en=f"unknown kind {kind!r}; the kinds: {KIND_LIST}")
        if kind == "study_check" and value in STUDY_CHECK_CODES:
            value = STUDY_CHECK_CODES[value]
        if kind in MEMBER_KIND_SET:
            if not member_id:
                raise MalformedFile(source.path, line, "member_id", zh=f"{KIND_LABELS[kind]['zh-CN']}是党员的记录：须填人员编号",
                                    en=f"{kind} is a member's record: member_id is required")
            if member_id != last_member:
                check_id(source, line, "member_id", member_id)
                last_member = member_id
        elif member_id:
            raise MalformedFile(source.path, line, "member_id", zh=f"{KIND_LABELS[kind]['zh-CN']}是党支部的记录：人员编号须留空",
                                en=f"{kind} is a branch's record: leave member_id empty")
        if branch_id not in ids:
            check_id(source, line, "branch_id", branch_id)
            if len(ids) < 1_000_000:
                ids.add(branch_id)
        date = dates.get(text)
        if date is None:
            try:
                parsed = parse_date(text)
            except ValueError:
                raise MalformedFile(source.path, line, "date", zh=f"{text!r} 不是日期（YYYY-MM-DD、YYYY/M/D 或 YYYY年M月D日）",
                                    en=f"{text!r} is not a date (YYYY-MM-DD, YYYY/M/D or YYYY年M月D日)") from None
            if not EARLIEST <= parsed <= LATEST:
                raise MalformedFile(source.path, line, "date", zh=f"{text} 不是合理的日期", en=f"{text} is not a plausible date")
            date = dates[text] = parsed.isoformat()
        if ref and len(ref) > 200:
            raise MalformedFile(source.path, line, "ref", zh="超过 200 个字符", en="is longer than 200 characters")
        num: float | None = None
        if not deferred:
            if kind in HOURS:
                try:
                    num = float(value)
                except ValueError:
                    num = None
                if num is None or not 0.0 <= num <= 24.0:  # NaN and infinities fail too
                    num = _deferred(source, line, kind, value, deferred)
            elif kind != "study_check" or value not in ("pass", "fail"):
                num = _deferred(source, line, kind, value, deferred)
        yield line, member_id or None, branch_id, kind, date, value, num, ref or None


def _deferred(source: Source, line: int, kind: str, value: str, deferred: list[MalformedFile]) -> float | None:
    try:
        return _value(source, line, kind, value, None)
    except MalformedFile as exc:
        deferred.append(exc)
        return None


def _first_misfit(session: Session, source: Source, stage: Table, deferred: list[MalformedFile]) -> None:
    """The first row (in file order) that does not fit the roster, or repeats a ref, or has a bad value: raised.

    Same order as a row-by-row check: by line, and on one line branch, member, membership, value, ref."""
    s = stage.c
    found: list[tuple[int, int, MalformedFile | None]] = []
    if deferred:
        found.append((deferred[0].line or 0, 3, deferred[0]))
    no_branch = ~select(Branch.branch_id).where(Branch.branch_id == s.branch_id).exists()
    not_member = and_(
        s.member_id.is_not(None),
        ~select(BranchHistory.member_id)
        .where(BranchHistory.member_id == s.member_id, BranchHistory.branch_id == s.branch_id)
        .exists(),
    )
    line = session.scalar(select(func.min(s.line)).where(or_(no_branch, not_member)))
    if line is not None:
        found.append((line, 0, None))
    size = (
        select(func.count())
        .select_from(Person)
        .where(Person.branch_id == s.branch_id, Person.role != "inspector")
        .scalar_subquery()
    )
    crowded = session.execute(
        select(s.line, s.num, size)
        .where(s.member_id.is_(None), s.kind.in_(MEETINGS), s.num.is_not(None), s.num > size)
        .order_by(s.line)
        .limit(1)
    ).first()
    if crowded is not None:
        found.append((crowded[0], 3, _crowded(source, crowded[0], int(crowded[1]), crowded[2])))
    twice = session.scalar(
        select(func.count()).select_from(
            select(s.ref).where(s.ref.is_not(None)).group_by(s.ref).having(func.count() > 1).limit(1).subquery()
        )
    )
    if twice:
        t = stage.alias("t")
        first = select(func.min(t.c.line)).where(t.c.ref == s.ref).scalar_subquery()
        again = session.execute(
            select(s.line, s.ref, first).where(s.ref.is_not(None), s.line > first).order_by(s.line).limit(1)
        ).one()
        found.append((again[0], 4, MalformedFile(source.path, again[0], "ref", zh=f"来源编号 {again[1]!r} 已在第{again[2]}行出现",
                                                 en=f"ref {again[1]!r} is already on line {again[2]}")))
    if not found:
        return
    line, _rank, error = min(found, key=lambda f: (f[0], f[1]))
    if error is not None:
        raise error
    member_id, branch_id = session.execute(select(s.member_id, s.branch_id).where(s.line == line)).one()
    if session.get(Branch, branch_id) is None:
        raise MalformedFile(source.path, line, "branch_id", zh=f"没有党支部 {branch_id!r}", en=f"unknown branch {branch_id!r}")
    if session.get(Person, member_id) is None:
        raise MalformedFile(source.path, line, "member_id", zh=f"没有党员 {member_id!r}", en=f"unknown member {member_id!r}")
    raise MalformedFile(source.path, line, "branch_id", zh=f"党员 {member_id} 从未属于党支部 {branch_id}",
                        en=f"member {member_id} never belonged to branch {branch_id}")


def import_records(session: Session, source: Source, actor: str, at: dt.datetime) -> RecordsResult:
    """Stream the file into a staging table (COPY on PostgreSQL), check it set-wise, then one INSERT … SELECT;
    a known ref whose row changed is corrected in place. The caller's transaction makes it all or nothing."""
    importer = authority.evidence_importer(session, actor)
    result = RecordsResult()
    if session.scalar(
        select(ImportRecord.id).where(ImportRecord.kind == "records", ImportRecord.sha256 == source.sha256)
    ):
        result.unchanged = True
        return result
    deferred: list[MalformedFile] = []
    stage = staging_table(
        session,
        STAGE,
        [
            Column("line", Integer, primary_key=True),  # SQLite: the rowid, so file order costs no sort
            Column("member_id", String(64)),
            Column("branch_id", String(64), nullable=False),
            Column("kind", String(32), nullable=False),
            Column("date", Date, nullable=False),
            Column("value", Text, nullable=False),
            Column("num", Float),
            Column("ref", String(200)),
        ],
        _staged(source, deferred),
    )
    session.connection().exec_driver_sql(f"CREATE INDEX ix_{STAGE}_ref ON {STAGE} (ref)")
    if session.get_bind().dialect.name == "postgresql":
        session.connection().exec_driver_sql(f"ANALYZE {STAGE}")
    _first_misfit(session, source, stage, deferred)
    s = stage.c
    foreign = authority.foreign_rows(importer, select(s.line, s.branch_id))
    if foreign is not None and (row := session.execute(foreign).first()) is not None:
        raise Unauthorized(
            zh=f"{source.path} 第{row[0]}行：党支部 {row[1]} 不是 {actor} 所在的党支部（{importer.branch_id}）；"
            "须由该支部书记或上级党委导入",
            en=f"{source.path}, line {row[0]}: branch {row[1]} is not {actor}'s branch ({importer.branch_id}); "
            "its secretary or a leader may import it",
        )
    count = session.scalar(select(func.count()).select_from(stage)) or 0
    record = ImportRecord(kind="records", scope="", sha256=source.sha256, filename=source.path, rows=count, at=at, actor=actor)
    session.add(record)
    session.flush()
    known = select(Evidence.id).where(Evidence.ref == s.ref).exists()
    corrections = session.scalar(select(s.line).where(s.ref.is_not(None), known).limit(1)) is not None
    since = facts.last_evidence_id(session)
    if corrections:
        facts.note_corrections(
            session, select(Evidence.member_id, Evidence.branch_id).where(Evidence.ref.in_(select(s.ref)))
        )
        result.updated = changed(session.connection().execute(
            update(Evidence)
            .where(
                Evidence.ref == s.ref,
                or_(
                    Evidence.member_id.is_distinct_from(s.member_id),
                    Evidence.branch_id != s.branch_id,
                    Evidence.kind != s.kind,
                    Evidence.date != s.date,
                    Evidence.value != s.value,
                ),
            )
            .values(
                member_id=s.member_id, branch_id=s.branch_id, kind=s.kind, date=s.date, value=s.value, num=s.num,
                import_id=record.id,
            )
            .execution_options(preserve_rowcount=True)
        ))
    fresh = (
        select(s.member_id, s.branch_id, s.kind, s.date, s.value, s.num, s.ref, literal(record.id))
        .where(or_(s.ref.is_(None), ~known) if corrections else s.line.is_not(None))
        .order_by(s.line)
    )
    result.added = changed(session.connection().execute(
        insert(Evidence).from_select(
            ["member_id", "branch_id", "kind", "date", "value", "num", "ref", "import_id"], fresh
        ).execution_options(preserve_rowcount=True)
    ))
    session.connection().exec_driver_sql(f"DROP TABLE {STAGE}")
    facts.merge_import(session, record.id, since, corrections)
    audit.log(
        session, campaign_key="", member_id=None, branch_id=None, from_state=None, to_state=None,
        cause="record_import", actor=actor, reason=f"{source.path}: {result.added} added, {result.updated} corrected", at=at,
    )
    return result
