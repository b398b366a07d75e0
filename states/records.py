"""Importing evidence: every row checked, the whole file refused on one bad row, the same file twice a no-op."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from states import audit
from states.clock import parse_date
from states.csvio import CsvFile, check_id, number, rows
from states.errors import MalformedFile
from states.models import Branch, BranchHistory, Evidence, ImportRecord, Person
from states.roster import participants

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


def _value(source: CsvFile, line: int, kind: str, value: str, branch_size: int | None) -> float | None:
    """Checks a value for its kind; returns the number the measures add up, if the kind has one."""
    if kind in ("study_self", "study_concentrated"):
        return number(source, line, "value", value, 0.0, 24.0)  # hours of one sitting
    if kind == "study_check":
        if value not in ("pass", "fail"):
            raise MalformedFile(source.path, line, "value", f"study_check is 'pass' or 'fail', not {value!r}")
        return None
    if kind == "satisfaction_evaluation":
        return number(source, line, "value", value, 0.0, 100.0)
    if kind == "opinions_solicited":
        count = number(source, line, "value", value, 0, 10_000_000)
        if not count.is_integer():
            raise MalformedFile(source.path, line, "value", f"{value!r} is not a whole count")
        return count
    if kind in MEETINGS and value != "":
        signed = number(source, line, "value", value, 0, 10_000_000)
        if not signed.is_integer():
            raise MalformedFile(source.path, line, "value", f"{value!r} is not a whole number signed in")
        if branch_size is not None and signed > branch_size:
            raise MalformedFile(
                source.path, line, "value", f"{int(signed)} signed in, but the branch has {branch_size} participants"
            )
        return signed
    if len(value) > 2000:
        raise MalformedFile(source.path, line, "value", "is longer than 2000 characters")
    return None


def import_records(session: Session, source: CsvFile, actor: str, at: dt.datetime) -> RecordsResult:
    result = RecordsResult()
    if session.scalar(
        select(ImportRecord.id).where(ImportRecord.kind == "records", ImportRecord.sha256 == source.sha256)
    ):
        result.unchanged = True
        return result
    parsed: list[tuple[int, dict[str, Any]]] = []
    member_ids: set[str] = set()
    branch_ids: set[str] = set()
    for line, row in rows(source, COLUMNS, ("ref",)):
        kind = row["kind"]
        if kind not in MEMBER_KINDS and kind not in BRANCH_KINDS:
            raise MalformedFile(source.path, line, "kind", f"unknown kind {kind!r}")
        member_id = row["member_id"] or None
        if kind in MEMBER_KINDS and member_id is None:
            raise MalformedFile(source.path, line, "member_id", f"{kind} is a member's record: member_id is required")
        if kind in BRANCH_KINDS and member_id is not None:
            raise MalformedFile(source.path, line, "member_id", f"{kind} is a branch's record: leave member_id empty")
        if member_id is not None:
            check_id(source, line, "member_id", member_id)
            member_ids.add(member_id)
        branch_id = check_id(source, line, "branch_id", row["branch_id"])
        branch_ids.add(branch_id)
        try:
            date = parse_date(row["date"])
        except ValueError:
            raise MalformedFile(source.path, line, "date", f"{row['date']!r} is not a date YYYY-MM-DD") from None
        if not EARLIEST <= date <= LATEST:
            raise MalformedFile(source.path, line, "date", f"{row['date']} is not a plausible date")
        ref = row.get("ref") or None
        if ref is not None and len(ref) > 200:
            raise MalformedFile(source.path, line, "ref", "is longer than 200 characters")
        parsed.append(
            (line, {"member_id": member_id, "branch_id": branch_id, "kind": kind, "date": date, "value": row["value"], "ref": ref})
        )
    known_branches = {b for chunk in _chunks(sorted(branch_ids)) for b in session.scalars(select(Branch.branch_id).where(Branch.branch_id.in_(chunk)))}
    belongs: set[tuple[str, str]] = set()
    known_members: set[str] = set()
    for chunk in _chunks(sorted(member_ids)):
        known_members.update(session.scalars(select(Person.member_id).where(Person.member_id.in_(chunk))))
        belongs.update(
            (m, b)
            for m, b in session.execute(
                select(BranchHistory.member_id, BranchHistory.branch_id).where(BranchHistory.member_id.in_(chunk))
            )
        )
    sizes = {b: participants(session, b) for b in known_branches}
    seen_refs: dict[str, int] = {}
    for line, fact in parsed:
        if fact["branch_id"] not in known_branches:
            raise MalformedFile(source.path, line, "branch_id", f"unknown branch {fact['branch_id']!r}")
        member_id = fact["member_id"]
        if member_id is not None:
            if member_id not in known_members:
                raise MalformedFile(source.path, line, "member_id", f"unknown member {member_id!r}")
            if (member_id, fact["branch_id"]) not in belongs:
                raise MalformedFile(
                    source.path, line, "branch_id", f"member {member_id} never belonged to branch {fact['branch_id']}"
                )
        fact["num"] = _value(source, line, fact["kind"], fact["value"], sizes.get(fact["branch_id"]) if member_id is None else None)
        if fact["ref"] is not None:
            if fact["ref"] in seen_refs:
                raise MalformedFile(source.path, line, "ref", f"ref {fact['ref']!r} is already on line {seen_refs[fact['ref']]}")
            seen_refs[fact["ref"]] = line
    record = ImportRecord(kind="records", scope="", sha256=source.sha256, filename=source.path, rows=len(parsed), at=at, actor=actor)
    session.add(record)
    session.flush()
    existing: dict[str, Evidence] = {}
    for chunk in _chunks(sorted(seen_refs)):
        existing.update({e.ref: e for e in session.scalars(select(Evidence).where(Evidence.ref.in_(chunk))) if e.ref})
    fresh: list[dict[str, Any]] = []
    for _line, fact in parsed:
        old = existing.get(fact["ref"]) if fact["ref"] else None
        if old is None:
            fresh.append({**fact, "import_id": record.id})
            continue
        if any(getattr(old, k) != fact[k] for k in ("member_id", "branch_id", "kind", "date", "value")):
            session.execute(update(Evidence).where(Evidence.id == old.id).values(**fact, import_id=record.id))
            result.updated += 1
    if fresh:
        session.execute(insert(Evidence), fresh)
    result.added = len(fresh)
    audit.log(
        session, campaign_key="", member_id=None, branch_id=None, from_state=None, to_state=None,
        cause="record_import", actor=actor, reason=f"{source.path}: {result.added} added, {result.updated} corrected", at=at,
    )
    return result


def _chunks(items: list[str], size: int = 500) -> list[list[str]]:
    return [items[i : i + size] for i in range(0, len(items), size)]
