"""Who may act: an actor is a person of the roster, and their role decides on whom they may act."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from states.errors import NotFound, Unauthorized
from states.labels import role_label
from states.models import Person

LEADERS = ("committee_secretary", "party_group_deputy", "party_group_secretary")


def _role(person: Person) -> str:
    """A person's role in the office's words, for a refusal in Chinese."""
    return role_label(person.role, "zh-CN")


def actor_person(session: Session, actor: str) -> Person:
    person = session.get(Person, actor)
    if person is None:
        raise NotFound(zh=f"--actor {actor!r} 不是名册中的人员", en=f"--actor {actor!r} is not a person of the roster")
    return person


def may_change(session: Session, actor: str) -> Person:
    """Anyone on the roster but an inspector (who reads everything and changes nothing)."""
    person = actor_person(session, actor)
    if person.role == "inspector":
        raise Unauthorized(zh=f"{actor} 是督导组成员：督导组成员可查看一切，不作任何更改",
                           en=f"{actor} is an inspector: inspectors read everything and change nothing")
    return person


def over_member(session: Session, actor: str, member: Person) -> Person:
    """Leaders act on anyone; a branch secretary on the members of their own branch; nobody else."""
    person = may_change(session, actor)
    if person.role in LEADERS:
        return person
    if person.role == "branch_secretary" and person.branch_id == member.branch_id:
        return person
    if person.role == "branch_secretary":
        raise Unauthorized(zh=f"{actor} 是党支部 {person.branch_id} 的书记，不是 {member.member_id} 所在支部的书记",
                           en=f"{actor} is secretary of branch {person.branch_id}, not of {member.member_id}'s branch")
    raise Unauthorized(zh=f"{actor}（{_role(person)}）无权对 {member.member_id} 办理",
                       en=f"{actor} ({person.role}) may not act on {member.member_id}")


def over_branch(session: Session, actor: str, branch_id: str) -> Person:
    person = may_change(session, actor)
    if person.role in LEADERS or (person.role == "branch_secretary" and person.branch_id == branch_id):
        return person
    raise Unauthorized(zh=f"{actor}（{_role(person)}）无权对党支部 {branch_id} 办理",
                       en=f"{actor} ({person.role}) may not act on branch {branch_id}")


def leader(session: Session, actor: str, *, zh: str, en: str) -> Person:
    """approve, excellent and resolve (the act `zh`/`en`): only the committee secretary and the party group's
    secretary or deputy."""
    person = may_change(session, actor)
    if person.role not in LEADERS:
        raise Unauthorized(zh=f"只有上级党委可以{zh}；{actor} 是{_role(person)}",
                           en=f"only the upper committee may {en}; {actor} is {person.role}")
    return person


# Who takes each act that moves a member on from a side state, as the checks above enforce it: "branch" — the
# member's own branch secretary or a leader (`over_member`; records by the row's branch secretary or a leader),
# "leaders" — the upper committee (`leader`), "system" — the clock (a sweep or Prefect's deadline run).
MEMBER_ACTS: dict[str, str] = {
    "start": "system",
    "exempt": "branch",
    "unexempt": "branch",
    "refer": "branch",
    "resume": "branch",
    "withdrawal_confirmed": "branch",
    "accept_late": "branch",
    "withdrawal_approved": "leaders",
    "disposition": "branch",
}


def acting_roles(act: str) -> tuple[str, ...]:
    """The roles that may take `act` on a member (for a branch secretary: of the member's own branch)."""
    who = MEMBER_ACTS[act]
    if who == "branch":
        return ("branch_secretary", *LEADERS)
    if who == "leaders":
        return LEADERS
    return ()


# -- imports are acts too --------------------------------------------------------------------------------------------


def importer(session: Session, actor: str, *, zh: str, en: str) -> Person:
    """A roster import or a plan load (the act `zh`/`en`): the committee secretary or the party group, as the
    roster stands now."""
    person = may_change(session, actor)
    if person.role not in LEADERS:
        raise Unauthorized(
            zh=f"只有机关党委书记或党组可以{zh}；{actor} 是{_role(person)}",
            en=f"only the committee secretary or the party group may {en}; {actor} is {person.role}",
        )
    return person


def roster_is_empty(session: Session) -> bool:
    return session.scalar(select(Person.member_id).limit(1)) is None


def first_roster(actor: str, role_in_file: str | None) -> None:
    """The first roster of an empty database: imported by someone it names as one of the leaders (nobody else can
    be checked against a roster that does not exist yet)."""
    if role_in_file is None:
        raise Unauthorized(
            zh=f"首份名册须由其中列为机关党委书记或党组成员的人导入；名册中没有 {actor}",
            en=f"the first roster must be imported by a person it names as committee secretary or party group; "
            f"it does not name {actor}",
        )
    if role_in_file not in LEADERS:
        raise Unauthorized(
            zh=f"首份名册须由其中列为机关党委书记或党组成员的人导入；名册中 {actor} 是{role_label(role_in_file, 'zh-CN')}",
            en=f"the first roster must be imported by a person it names as committee secretary or party group; "
            f"it names {actor} as {role_in_file}",
        )


def evidence_importer(session: Session, actor: str) -> Person:
    """Records: a leader, or a branch secretary (each row's branch is checked once the file is staged)."""
    person = may_change(session, actor)
    if person.role in LEADERS or (person.role == "branch_secretary" and person.branch_id):
        return person
    raise Unauthorized(
        zh=f"{actor}（{_role(person)}）无权导入记录：须由每行所属党支部的书记或上级党委导入",
        en=f"{actor} ({person.role}) may not import records: the secretary of each row's branch or a leader may",
    )


def foreign_rows(person: Person, branch_of_row: Select[Any]) -> Select[Any] | None:
    """For a branch secretary, the query for rows (line, branch) of other branches than theirs; a leader has none.

    `branch_of_row` selects (line, branch_id) from the staged file; the caller takes its first row."""
    if person.role in LEADERS:
        return None
    line, branch = branch_of_row.selected_columns
    return branch_of_row.where(branch != person.branch_id).order_by(line).limit(1)
