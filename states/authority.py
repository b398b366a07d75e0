"""Who may act: an actor is a person of the roster, and their role decides on whom they may act."""

from __future__ import annotations

from sqlalchemy.orm import Session

from states.errors import NotFound, Unauthorized
from states.models import Person

LEADERS = ("committee_secretary", "party_group_deputy", "party_group_secretary")


def actor_person(session: Session, actor: str) -> Person:
    person = session.get(Person, actor)
    if person is None:
        raise NotFound(f"--actor {actor!r} is not a person of the roster")
    return person


def may_change(session: Session, actor: str) -> Person:
    """Anyone on the roster but an inspector (who reads everything and changes nothing)."""
    person = actor_person(session, actor)
    if person.role == "inspector":
        raise Unauthorized(f"{actor} is an inspector: inspectors read everything and change nothing")
    return person


def over_member(session: Session, actor: str, member: Person) -> Person:
    """Leaders act on anyone; a branch secretary on the members of their own branch; nobody else."""
    person = may_change(session, actor)
    if person.role in LEADERS:
        return person
    if person.role == "branch_secretary" and person.branch_id == member.branch_id:
        return person
    if person.role == "branch_secretary":
        raise Unauthorized(f"{actor} is secretary of branch {person.branch_id}, not of {member.member_id}'s branch")
    raise Unauthorized(f"{actor} ({person.role}) may not act on {member.member_id}")


def over_branch(session: Session, actor: str, branch_id: str) -> Person:
    person = may_change(session, actor)
    if person.role in LEADERS or (person.role == "branch_secretary" and person.branch_id == branch_id):
        return person
    raise Unauthorized(f"{actor} ({person.role}) may not act on branch {branch_id}")


def leader(session: Session, actor: str, action: str) -> Person:
    """approve, excellent and resolve: only the committee secretary and the party group's secretary or deputy."""
    person = may_change(session, actor)
    if person.role not in LEADERS:
        raise Unauthorized(f"only the upper committee may {action}; {actor} is {person.role}")
    return person
