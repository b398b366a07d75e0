"""Members and branches per state, kept as the progress rows move, so `status` does not count a million rows.

Every statement that enrols or moves progress rows adds its deltas here in the same transaction (`shift`): the
sum of a state's deltas is the number of rows in that state. Deltas are only inserted — parallel chunks never
wait on one another for a counter row — and `fold` replaces a campaign's deltas by one row per state at a
sweep's end, so a read sums a few hundred rows at most. `differences` compares them with a count of the rows
(the test oracle and `campaign db check-facts`).
"""

from __future__ import annotations

from collections import defaultdict

from sqlalchemy import delete, func, insert, literal, select
from sqlalchemy.orm import Session

from states.models import BranchProgress, MemberProgress, ProgressCount

TABLES: dict[str, type[MemberProgress] | type[BranchProgress]] = {"member": MemberProgress, "branch": BranchProgress}


def shift(session: Session, key: str, subject: str, source: str | None, dest: str, moved: int) -> None:
    """`moved` rows of `subject` went from `source` (None: enrolled) to `dest`."""
    if not moved or source == dest:
        return
    rows = [{"campaign_key": key, "subject": subject, "state": dest, "delta": moved}]
    if source is not None:
        rows.append({"campaign_key": key, "subject": subject, "state": source, "delta": -moved})
    session.execute(insert(ProgressCount), rows)


def counts(session: Session, key: str, subject: str) -> dict[str, int]:
    """The number of `subject` rows of the campaign in each state (states with none left out)."""
    return {
        state: int(n)
        for state, n in session.execute(
            select(ProgressCount.state, func.sum(ProgressCount.delta))
            .where(ProgressCount.campaign_key == key, ProgressCount.subject == subject)
            .group_by(ProgressCount.state)
        )
        if n
    }


def fold(session: Session, key: str) -> None:
    """Replace the campaign's deltas by their sums: the rows deleted are the rows summed (RETURNING), so a delta
    a concurrent mover adds meanwhile is either folded or left as it is, never lost or counted twice."""
    gone = session.execute(
        delete(ProgressCount)
        .where(ProgressCount.campaign_key == key)
        .returning(ProgressCount.subject, ProgressCount.state, ProgressCount.delta)
    ).all()
    sums: dict[tuple[str, str], int] = defaultdict(int)
    for subject, state, delta in gone:
        sums[(subject, state)] += delta
    rows = [{"campaign_key": key, "subject": s, "state": st, "delta": n} for (s, st), n in sorted(sums.items()) if n]
    if rows:
        session.execute(insert(ProgressCount), rows)


def recount(session: Session, key: str) -> None:
    """Rebuild the campaign's counts from the progress rows (a new schema's backfill, a repair)."""
    session.execute(delete(ProgressCount).where(ProgressCount.campaign_key == key))
    for subject, table in TABLES.items():
        session.execute(
            insert(ProgressCount).from_select(
                ["campaign_key", "subject", "state", "delta"],
                select(table.campaign_key, literal(subject), table.state, func.count())
                .where(table.campaign_key == key)
                .group_by(table.campaign_key, table.state),
            )
        )


def differences(session: Session, key: str) -> list[str]:
    """Where the kept counts and a count of the progress rows disagree (empty: they agree)."""
    found = []
    for subject, table in TABLES.items():
        actual = dict(
            session.execute(
                select(table.state, func.count()).where(table.campaign_key == key).group_by(table.state)
            ).all()
        )
        kept = counts(session, key, subject)
        for state in sorted(set(actual) | set(kept)):
            if actual.get(state, 0) != kept.get(state, 0):
                found.append(f"{subject} {state}: kept {kept.get(state, 0)}, counted {actual.get(state, 0)}")
    return found
