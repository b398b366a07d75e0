"""Importing the roster: units, branches and people are added or updated (never deleted); joins and transfers."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, func, insert, literal, select
from sqlalchemy.orm import Session

from states import audit
from states.csvio import CsvFile, check_id, rows
from states.db import changed, insert_ignoring_duplicates
from states.errors import MalformedFile
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
)

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
COLUMNS = ("member_id", "name", "branch_id", "branch_name", "unit", "role", "email")


@dataclass
class RosterResult:
    added: int = 0
    updated: int = 0
    transferred: int = 0
    joined: int = 0
    unchanged: bool = False


def _parse(source: CsvFile) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    people: dict[str, dict[str, Any]] = {}
    branches: dict[str, dict[str, Any]] = {}
    for line, row in rows(source, COLUMNS, ("locale",)):
        member_id = check_id(source, line, "member_id", row["member_id"])
        if not row["name"] or len(row["name"]) > 200:
            raise MalformedFile(source.path, line, "name", "a name is required (at most 200 characters)")
        role = row["role"]
        if role not in ROLES:
            raise MalformedFile(source.path, line, "role", f"{role!r} is not one of {', '.join(ROLES)}")
        if not row["unit"] or len(row["unit"]) > 200:
            raise MalformedFile(source.path, line, "unit", "a unit is required (at most 200 characters)")
        branch_id = row["branch_id"] or None
        if branch_id is None and role != "inspector":
            raise MalformedFile(source.path, line, "branch_id", "everyone but an inspector belongs to a branch")
        if branch_id is not None:
            check_id(source, line, "branch_id", branch_id)
            if not row["branch_name"]:
                raise MalformedFile(source.path, line, "branch_name", "a branch needs a name")
            seen = branches.setdefault(branch_id, {"branch_id": branch_id, "name": row["branch_name"], "unit": row["unit"], "line": line})
            if seen["name"] != row["branch_name"]:
                raise MalformedFile(
                    source.path, line, "branch_name", f"branch {branch_id} is named {seen['name']!r} on line {seen['line']}"
                )
        email = row["email"] or None
        if email is not None and ("@" not in email or any(c.isspace() for c in email) or len(email) > 320):
            raise MalformedFile(source.path, line, "email", f"{email!r} is not an e-mail address")
        locale = row.get("locale") or "zh-CN"
        if locale not in LOCALES:
            raise MalformedFile(source.path, line, "locale", f"{locale!r} is not one of {', '.join(LOCALES)}")
        person = {
            "member_id": member_id,
            "name": row["name"],
            "branch_id": branch_id,
            "unit": row["unit"],
            "role": role,
            "email": email,
            "locale": locale,
        }
        previous = people.get(member_id)
        if previous is not None and previous != person:
            raise MalformedFile(source.path, line, "member_id", f"{member_id} appears twice with different values")
        people[member_id] = person
    return people, branches


def import_roster(session: Session, source: CsvFile, actor: str, at: dt.datetime) -> RosterResult:
    """Add or update everyone in the file, in the caller's transaction; a bad row rejects the whole file."""
    people, branches = _parse(source)
    result = RosterResult()
    if session.scalar(
        select(ImportRecord.id).where(ImportRecord.kind == "roster", ImportRecord.sha256 == source.sha256)
    ):
        result.unchanged = True
        return result
    units = {p["unit"] for p in people.values()} | {b["unit"] for b in branches.values()}
    for unit in sorted(units):
        session.execute(insert_ignoring_duplicates(session, Unit).values(name=unit))
    for branch in branches.values():
        existing = session.get(Branch, branch["branch_id"])
        if existing is None:
            session.add(Branch(branch_id=branch["branch_id"], name=branch["name"], unit=branch["unit"]))
        else:
            existing.name, existing.unit = branch["name"], branch["unit"]
    session.flush()
    known = {
        p.member_id: p
        for chunk in _chunks(list(people), 500)
        for p in session.scalars(select(Person).where(Person.member_id.in_(chunk)))
    }
    for member_id, values in people.items():
        person = known.get(member_id)
        if person is None:
            session.add(Person(**values))
            result.added += 1
        else:
            moved = person.branch_id != values["branch_id"]
            changed = any(getattr(person, k) != v for k, v in values.items())
            if moved and person.branch_id is not None and values["branch_id"] is not None:
                result.transferred += 1
                audit.log(
                    session, campaign_key="", member_id=member_id, branch_id=values["branch_id"],
                    from_state=None, to_state=None, cause="transfer", actor=actor,
                    reason=f"{person.branch_id} → {values['branch_id']}", at=at,
                )
            for k, v in values.items():
                setattr(person, k, v)
            result.updated += int(changed)
        if values["branch_id"] is not None:
            session.execute(
                insert_ignoring_duplicates(session, BranchHistory).values(
                    member_id=member_id, branch_id=values["branch_id"], since=at
                )
            )
    session.flush()
    for campaign_key in session.scalars(select(Campaign.key)):
        result.joined += enrol_newcomers(session, campaign_key, actor, at)
    session.add(
        ImportRecord(kind="roster", scope="", sha256=source.sha256, filename=source.path, rows=len(people), at=at, actor=actor)
    )
    audit.log(
        session, campaign_key="", member_id=None, branch_id=None, from_state=None, to_state=None,
        cause="roster_import", actor=actor, reason=f"{source.path}: {len(people)} people", at=at,
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
    session.execute(
        insert(BranchProgress).from_select(
            ["branch_id", "campaign_key", "state", "state_since", "version"], new_branches
        )
    )
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
        )
    ))
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


def participants(session: Session, branch_id: str) -> int:
    return session.scalar(
        select(func.count()).select_from(Person).where(and_(Person.branch_id == branch_id, Person.role != "inspector"))
    ) or 0


__all__ = ["import_roster", "enrol_newcomers", "participants", "ROLES", "RosterResult"]
